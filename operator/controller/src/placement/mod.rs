//! Placement: how many replicas of each model fit on an edge pool's nodes, given what the nodes
//! can allocate and what other pods already request there (a pure step).

pub mod resources;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::ResourceExt;

use pice_api::{EdgeModel, EdgePool};
pub use resources::Resources;

/// The nodes of an edge pool and the room left on each for one more replica.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolCapacity {
    /// Nodes that match the pool's selector and whose taints the pool tolerates.
    pub nodes: usize,
    /// How many replicas of each model fit, up to `replicas.max`, by model name; models are
    /// placed in spec order, each taking room for up to `replicas.max` replicas.
    pub fits: BTreeMap<String, i32>,
}

/// Computes the capacity of `pool` for each of its models. `pods` are all pods in the cluster;
/// `is_own(pod, model)` tells the replicas being sized, whose requests are not counted as taken.
pub fn capacity<P: Borrow<Pod>>(
    pool: &EdgePool,
    nodes: &[Node],
    pods: &[P],
    is_own: impl Fn(&Pod) -> bool,
) -> PoolCapacity {
    let others: Vec<&Pod> = pods.iter().map(Borrow::borrow).filter(|p| !is_own(p)).collect();
    let taken = Taken::of(&others);
    capacity_with(pool, nodes, |node| taken.on(node))
}

/// Like [`capacity`], with `taken(node)` the requests on a node that are not the pool's own.
pub fn capacity_with(pool: &EdgePool, nodes: &[Node], taken: impl Fn(&Node) -> Resources) -> PoolCapacity {
    let eligible: Vec<&Node> = nodes.iter().filter(|n| matches(pool, n)).collect();
    let mut free: Vec<Resources> =
        eligible.iter().map(|node| Resources::allocatable(node).minus(&taken(node))).collect();
    let max = pool.replicas.max;
    let fits = pool.models.iter().map(|model| (model.name.clone(), place(model, max, &mut free))).collect();
    PoolCapacity { nodes: eligible.len(), fits }
}

/// What the pods bound to each node request (those that have not finished), summed once so that
/// many edge pools can be sized against the same nodes.
#[derive(Clone, Debug, Default)]
pub struct Taken(HashMap<String, Resources>);

impl Taken {
    /// The requests of `pods`, by the node each is bound to.
    pub fn of<P: Borrow<Pod>>(pods: &[P]) -> Self {
        let mut taken: HashMap<String, Resources> = HashMap::new();
        for pod in pods.iter().map(Borrow::borrow).filter(|p| holds_room(p)) {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
                let sum = taken.entry(node.clone()).or_default();
                *sum = sum.plus(&Resources::requested_by(pod));
            }
        }
        Self(taken)
    }

    /// What is requested on `node`.
    pub fn on(&self, node: &Node) -> Resources {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        self.0.get(name).cloned().unwrap_or_default()
    }
}

/// Fills the nodes with up to `max` replicas of `model` and returns how many fit; the room they
/// take is removed from `free`.
fn place(model: &EdgeModel, max: i32, free: &mut [Resources]) -> i32 {
    let need = Resources::of_model(model);
    let mut placed = 0;
    for room in free.iter_mut() {
        let count = room.how_many(&need).min(max - placed);
        *room = (0..count).fold(room.clone(), |r, _| r.minus(&need));
        placed += count;
    }
    placed
}

/// Whether a node belongs to the pool: labels match, taints tolerated, schedulable.
pub fn matches(pool: &EdgePool, node: &Node) -> bool {
    let labels = node.labels();
    let selected = pool.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    let spec = node.spec.clone().unwrap_or_default();
    let taints = spec.taints.unwrap_or_default();
    selected && !spec.unschedulable.unwrap_or(false) && taints.iter().all(|t| tolerated(t, &pool.tolerations))
}

fn tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    if taint.effect == "PreferNoSchedule" {
        return true;
    }
    tolerations.iter().any(|t| {
        let key = t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key);
        let effect = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
        let value = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        };
        key && effect && value
    })
}

/// Whether a pod still takes room on its node (it has not finished).
fn holds_room(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed"))
}

#[cfg(test)]
mod tests;
