//! The edge replica plan, decided every sync period for each edge pool and model: this module
//! reads what the plan needs (the cached Nodes and the pods bound to each edge pool's nodes, the
//! gateways' wake-up count, the measured queue depth), [`plan`] decides from those readings
//! alone, [`Plans`] keeps the last plan of each pool and [`sync`] runs the autoscaler's loop.

mod plan;
pub mod sync;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use super::Context;
use super::cache::Caches;
use super::observed::Observed;
use crate::autoscale::{Wake, decide};
use crate::placement::{self, Taken};
use pice_api::{EdgePool, InferencePool};

pub use plan::{ModelPlan, replicas};

/// Whether `plans` were measured on other agents than the pool's ready ones now (a replica
/// became ready or went away since): the queue and the status they give are out of date.
pub fn measured_other_agents(pool: &InferencePool, plans: &[ModelPlan], observed: &Observed) -> bool {
    let name = pool.name_any();
    pool.spec.edge.pools.iter().any(|edge_pool| {
        edge_pool.models.iter().any(|model| {
            let deployment = crate::children::names::edge(&name, &edge_pool.name, &model.name);
            let agents = plan::ready_agents(observed, &edge_pool.name, model);
            plans.iter().find(|p| p.deployment == deployment).is_none_or(|p| p.agents != agents)
        })
    })
}

/// What a plan reads of the cluster besides the pool's own children: the Nodes, and what the
/// pods bound to each request (any namespace), taken from the caches once per autoscaler pass.
pub struct Cluster {
    nodes: Vec<Arc<Node>>,
    taken: Taken,
}

impl Cluster {
    /// The cached Nodes and what the cached pods request on each.
    pub fn of(caches: &Caches) -> Self {
        Self { nodes: caches.nodes.state(), taken: Taken::of(&caches.pods.state()) }
    }
}

/// Measures, decides and records the plan of every edge Deployment of a pool; says whether it
/// differs from the plan kept before.
pub async fn replan(
    pool: &InferencePool,
    ctx: &Context,
    observed: &Observed,
    cluster: &Cluster,
) -> (Vec<ModelPlan>, bool) {
    let wake = wake_signal(pool, ctx, observed).await;
    let mut plans = Vec::new();
    for edge_pool in &pool.spec.edge.pools {
        plans.extend(plan_edge_pool(pool, edge_pool, cluster, ctx, observed, wake).await);
    }
    let (name, namespace) = (pool.name_any(), pool.namespace().unwrap_or_default());
    for plan in &plans {
        if let Some(queue) = plan.queue {
            let labels = [name.as_str(), namespace.as_str(), plan.edge_pool.as_str(), plan.model.as_str()];
            ctx.metrics.queue_depth.with_label_values(&labels).set(queue);
        }
    }
    let changed = ctx.plans.replace(pool, plans.clone());
    (plans, changed)
}

/// The gateways' wake-up signal for the pool, read only when an edge pool may stand at zero. It
/// is read even while that pool has replicas, so the count kept is current when it drops to zero
/// and the first requests after that wake it.
async fn wake_signal(pool: &InferencePool, ctx: &Context, observed: &Observed) -> Wake {
    if !pool.spec.edge.pools.iter().any(|p| p.replicas.min == 0) {
        return Wake::Quiet;
    }
    let counted = ctx.measurer.count_wakeups(&plan::gateways(observed)).await;
    if let Err(error) = &counted {
        tracing::debug!(pool = %pool.name_any(), %error, "wake-up count unknown");
    }
    ctx.wake_counts.observe(&super::key(pool), counted)
}

/// Finds the pods on the edge pool's nodes, measures each model's queue, then plans each model.
async fn plan_edge_pool(
    pool: &InferencePool,
    edge_pool: &EdgePool,
    cluster: &Cluster,
    ctx: &Context,
    observed: &Observed,
    wake: Wake,
) -> Vec<ModelPlan> {
    let eligible: Vec<Node> = cluster
        .nodes
        .iter()
        .filter(|n| placement::matches(edge_pool, n))
        .map(|n| n.as_ref().clone())
        .collect();
    let capacity = plan::capacity(edge_pool, &eligible, &cluster.taken, observed);
    let mut plans = Vec::new();
    for model in &edge_pool.models {
        let inputs = plan::ModelInputs::new(pool, edge_pool, model, &capacity, observed);
        let measured = ctx.measurer.measure(&edge_pool.autoscaling, &inputs.target).await;
        let policy = plan::policy(edge_pool, inputs.fits, ctx.settings.tolerance);
        let key = format!("{}/{}", pool.namespace().unwrap_or_default(), inputs.deployment);
        let decision = ctx.with_history(&key, |history| {
            decide(&policy, inputs.current, measured.clone().ok(), wake, ctx.now_seconds(), history)
        });
        plans.push(inputs.into_plan(measured, decision));
    }
    plans
}

/// The last plan of each pool (by uid).
#[derive(Debug, Default)]
pub struct Plans(Mutex<HashMap<String, PoolPlan>>);

/// A pool's plan and the generation of the spec it was made for.
type PoolPlan = (Option<i64>, Vec<ModelPlan>);

impl Plans {
    /// The last plan of `pool` if it was made for its current spec.
    pub fn current(&self, pool: &InferencePool) -> Option<Vec<ModelPlan>> {
        let plans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (generation, plans) = plans.get(&pool.uid()?)?;
        (*generation == pool.metadata.generation).then(|| plans.clone())
    }

    /// Keeps `plans` as the plan of `pool`; says whether they differ from the last ones.
    fn replace(&self, pool: &InferencePool, plans: Vec<ModelPlan>) -> bool {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = (pool.metadata.generation, plans);
        kept.insert(pool.uid().unwrap_or_default(), entry.clone()).is_none_or(|last| last != entry)
    }

    /// Forgets the plans of pools whose uid is not in `live`.
    pub fn retain(&self, live: &HashSet<String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|uid, _| live.contains(uid));
    }
}
