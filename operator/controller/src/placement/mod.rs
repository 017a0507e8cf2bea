//! Placement: how many replicas of each model fit on an edge pool's nodes, given what the nodes
//! can allocate and what other pods already request there (a pure step).

pub mod resources;

use std::collections::BTreeMap;

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
pub fn capacity(
    pool: &EdgePool,
    nodes: &[Node],
    pods: &[Pod],
    is_own: impl Fn(&Pod) -> bool,
) -> PoolCapacity {
    let eligible: Vec<&Node> = nodes.iter().filter(|n| matches(pool, n)).collect();
    let mut free: Vec<Resources> = eligible
        .iter()
        .map(|node| {
            let taken = pods.iter().filter(|p| on_node(p, node) && !is_own(p)).map(Resources::requested_by);
            taken.fold(Resources::allocatable(node), |free, used| free.minus(&used))
        })
        .collect();
    let max = pool.replicas.max;
    let fits = pool.models.iter().map(|model| (model.name.clone(), place(model, max, &mut free))).collect();
    PoolCapacity { nodes: eligible.len(), fits }
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

fn on_node(pod: &Pod, node: &Node) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.name_any().as_str());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    bound && !matches!(phase, Some("Succeeded" | "Failed"))
}

#[cfg(test)]
mod tests;
