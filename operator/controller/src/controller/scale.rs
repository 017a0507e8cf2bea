//! The edge replica plan: placement (what fits on each edge pool's nodes) and autoscaling on
//! measured queue depth and the gateways' wake-up count, decided every sync period for each edge
//! pool and model.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Context;
use super::status::Observed;
use crate::autoscale::{Policy, Target, Wake, decide};
use crate::children::names::{self, COMPONENT_LABEL, EDGE_POOL_LABEL, POOL_LABEL};
use crate::children::{AGENT_GRPC_PORT, EdgeReplicas, GATEWAY_CONTAINER_PORT};
use crate::error::{Error, Result};
use crate::placement;
use pice_api::{EdgeModel, EdgePool, InferencePool};

/// What was decided for one model on one edge pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    /// Edge pool name.
    pub edge_pool: String,
    /// Model name.
    pub model: String,
    /// Edge Deployment name.
    pub deployment: String,
    /// Nodes in the edge pool.
    pub nodes: i32,
    /// Replicas that fit, up to `replicas.max`.
    pub fits: i32,
    /// `replicas.max`.
    pub max: i32,
    /// Replicas the Deployment had (None when it does not exist yet).
    pub previous: Option<i32>,
    /// Replicas to ask for now.
    pub replicas: i32,
    /// Measured total queue, when the source answered.
    pub queue: Option<f64>,
    /// Why the queue could not be measured.
    pub unmeasured: Option<String>,
    /// Why `replicas` is what it is.
    pub reason: String,
    /// Requests that found no edge replica and woke the Deployment from zero.
    pub woken_by: Option<u64>,
}

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
    let counted = ctx.measurer.count_wakeups(&gateways(observed)).await;
    if let Err(error) = &counted {
        tracing::debug!(pool = %pool.name_any(), %error, "wake-up count unknown");
    }
    ctx.wake_counts.observe(&super::key(pool), counted)
}

/// `ip:port` of every live gateway pod, ready or not: a gateway whose readiness flips (cloud
/// probe, draining) would otherwise move the sum, and one that is starting makes it unknown,
/// which holds replicas, rather than lower.
fn gateways(observed: &Observed) -> Vec<String> {
    let mut gateways: Vec<String> = observed
        .pods
        .iter()
        .filter(|p| p.labels().get(COMPONENT_LABEL).map(String::as_str) == Some("gateway"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| Some(format!("{}:{GATEWAY_CONTAINER_PORT}", p.status.as_ref()?.pod_ip.as_ref()?)))
        .collect();
    gateways.sort();
    gateways
}

/// Replicas by Deployment name, for building the children.
pub fn replicas(plans: &[ModelPlan]) -> EdgeReplicas {
    plans.iter().map(|p| (p.deployment.clone(), p.replicas)).collect()
}

async fn plan_edge_pool(
    pool: &InferencePool,
    edge_pool: &EdgePool,
    nodes: &[Node],
    ctx: &Context,
    observed: &Observed,
    wake: Wake,
) -> Result<Vec<ModelPlan>> {
    let name = pool.name_any();
    let eligible: Vec<Node> = nodes.iter().filter(|n| placement::matches(edge_pool, n)).cloned().collect();
    let pods = pods_on(ctx, &eligible).await?;
    let own = |p: &Pod| {
        let labels = p.labels();
        labels.get(POOL_LABEL) == Some(&name) && labels.get(EDGE_POOL_LABEL) == Some(&edge_pool.name)
    };
    let capacity = placement::capacity(edge_pool, &eligible, &pods, own);
    let mut plans = Vec::new();
    for model in &edge_pool.models {
        let fits = capacity.fits.get(&model.name).copied().unwrap_or(0);
        let placed = (capacity.nodes, fits);
        plans.push(plan_model(pool, edge_pool, model, placed, ctx, observed, wake).await);
    }
    Ok(plans)
}

async fn plan_model(
    pool: &InferencePool,
    edge_pool: &EdgePool,
    model: &EdgeModel,
    (nodes, fits): (usize, i32),
    ctx: &Context,
    observed: &Observed,
    wake: Wake,
) -> ModelPlan {
    let deployment = names::edge(&pool.name_any(), &edge_pool.name, &model.name);
    let previous = observed.deployments.get(&deployment).and_then(|d| d.spec.as_ref()?.replicas);
    let target = Target {
        pool: pool.name_any(),
        edge_pool: edge_pool.name.clone(),
        model: model.name.clone(),
        agents: ready_agents(observed, &edge_pool.name, model),
    };
    let measured = ctx.measurer.measure(&edge_pool.autoscaling, &target).await;
    let autoscaling = &edge_pool.autoscaling;
    let policy = Policy {
        min: edge_pool.replicas.min,
        max: edge_pool.replicas.max,
        capacity: fits,
        target: autoscaling.target_queue_depth,
        tolerance: ctx.settings.tolerance,
        up_window: f64::from(autoscaling.scale_up_stabilization_seconds),
        down_window: f64::from(autoscaling.scale_down_stabilization_seconds),
    };
    let current = previous.unwrap_or(edge_pool.replicas.min);
    let key = format!("{}/{deployment}", pool.namespace().unwrap_or_default());
    let decision = ctx.with_history(&key, |history| {
        decide(&policy, current, measured.clone().ok(), wake, ctx.now_seconds(), history)
    });
    ModelPlan {
        edge_pool: edge_pool.name.clone(),
        model: model.name.clone(),
        deployment,
        nodes: i32::try_from(nodes).unwrap_or(i32::MAX),
        fits,
        max: edge_pool.replicas.max,
        previous,
        replicas: decision.replicas,
        queue: measured.as_ref().ok().copied(),
        unmeasured: measured.err(),
        reason: decision.reason,
        woken_by: decision.woken_by,
    }
}

/// `ip:port` of the edge agents of the ready pods of one model.
fn ready_agents(observed: &Observed, edge_pool: &str, model: &EdgeModel) -> Vec<String> {
    let model_label = names::model_label(&model.name);
    let mut agents: Vec<String> = observed
        .pods
        .iter()
        .filter(|p| {
            let labels = p.labels();
            labels.get(EDGE_POOL_LABEL).map(String::as_str) == Some(edge_pool)
                && labels.get(names::MODEL_LABEL) == Some(&model_label)
                && is_ready(p)
        })
        .filter_map(|p| Some(format!("{}:{AGENT_GRPC_PORT}", p.status.as_ref()?.pod_ip.as_ref()?)))
        .collect();
    agents.sort();
    agents
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    pod.metadata.deletion_timestamp.is_none()
        && conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
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
