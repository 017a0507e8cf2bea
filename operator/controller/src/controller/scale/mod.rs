//! The edge replica plan, decided every sync period for each edge pool and model: this module
//! reads what the plan needs (the Nodes, the pods bound to each edge pool's nodes, the gateways'
//! wake-up count, the measured queue depth) and [`plan`] decides from those readings alone.

mod plan;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Context;
use super::observed::Observed;
use crate::autoscale::{Wake, decide};
use crate::error::{Error, Result};
use crate::placement;
use pice_api::{EdgePool, InferencePool};

pub use plan::{ModelPlan, replicas};

/// Plans the replicas of every edge Deployment of a pool.
pub async fn plan(pool: &InferencePool, ctx: &Context, observed: &Observed) -> Result<Vec<ModelPlan>> {
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List { what: "Nodes", source })?
        .items;
    let wake = wake_signal(pool, ctx, observed).await;
    let mut plans = Vec::new();
    for edge_pool in &pool.spec.edge.pools {
        plans.extend(plan_edge_pool(pool, edge_pool, &nodes, ctx, observed, wake).await?);
    }
    Ok(plans)
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

/// Reads the pods on the edge pool's nodes and each model's queue, then plans each model.
async fn plan_edge_pool(
    pool: &InferencePool,
    edge_pool: &EdgePool,
    nodes: &[Node],
    ctx: &Context,
    observed: &Observed,
    wake: Wake,
) -> Result<Vec<ModelPlan>> {
    let eligible: Vec<Node> = nodes.iter().filter(|n| placement::matches(edge_pool, n)).cloned().collect();
    let pods = pods_on(ctx, &eligible).await?;
    let capacity = plan::capacity(pool, edge_pool, &eligible, &pods);
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
    Ok(plans)
}

/// Every pod bound to one of `nodes`, in any namespace.
async fn pods_on(ctx: &Context, nodes: &[Node]) -> Result<Vec<Pod>> {
    let api = Api::<Pod>::all(ctx.client.clone());
    let mut pods = Vec::new();
    for node in nodes {
        let params = ListParams::default().fields(&format!("spec.nodeName={}", node.name_any()));
        let list =
            api.list(&params).await.map_err(|source| Error::List { what: "Pods on edge nodes", source })?;
        pods.extend(list.items);
    }
    Ok(pods)
}
