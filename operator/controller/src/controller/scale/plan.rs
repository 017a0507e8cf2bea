//! The pure half of the edge replica plan: from the readings (nodes, pods, the pool's observed
//! children, the measured queue) to what each edge Deployment should run and why. No cluster
//! access here, so every rule has a unit test.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use super::super::observed::Observed;
use crate::autoscale::{Decision, Policy, Target};
use crate::children::names::{self, COMPONENT_LABEL, EDGE_POOL_LABEL};
use crate::children::{AGENT_GRPC_PORT, EdgeReplicas, GATEWAY_CONTAINER_PORT};
use crate::placement::{self, PoolCapacity, Taken};
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
    /// The ready agents whose queue was measured (`ip:port`).
    pub agents: Vec<String>,
}

/// Replicas by Deployment name, for building the children.
pub fn replicas(plans: &[ModelPlan]) -> EdgeReplicas {
    plans.iter().map(|p| (p.deployment.clone(), p.replicas)).collect()
}

/// The room on an edge pool's `nodes` for its models, given what every pod on them requests
/// (`taken`), not counting the pool's own replicas there (they are what is being sized).
pub fn capacity(edge_pool: &EdgePool, nodes: &[Node], taken: &Taken, observed: &Observed) -> PoolCapacity {
    let own: Vec<&Pod> = observed
        .pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| p.labels().get(EDGE_POOL_LABEL) == Some(&edge_pool.name))
        .collect();
    let own = Taken::of(&own);
    placement::capacity_with(edge_pool, nodes, |node| taken.on(node).minus(&own.on(node)))
}

/// The autoscaling policy of one model on `edge_pool`, capped at the `fits` replicas that fit.
pub fn policy(edge_pool: &EdgePool, fits: i32, tolerance: f64) -> Policy {
    let autoscaling = &edge_pool.autoscaling;
    Policy {
        min: edge_pool.replicas.min,
        max: edge_pool.replicas.max,
        capacity: fits,
        target: autoscaling.target_queue_depth,
        tolerance,
        up_window: f64::from(autoscaling.scale_up_stabilization_seconds),
        down_window: f64::from(autoscaling.scale_down_stabilization_seconds),
    }
}

/// Everything known about one model's Deployment before its queue is measured.
#[derive(Clone, Debug)]
pub struct ModelInputs {
    pub deployment: String,
    /// What to measure: the model's ready agents.
    pub target: Target,
    pub nodes: i32,
    pub fits: i32,
    pub max: i32,
    pub previous: Option<i32>,
    /// Replicas now: the Deployment's, or `replicas.min` before it exists.
    pub current: i32,
}

impl ModelInputs {
    pub fn new(
        pool: &InferencePool,
        edge_pool: &EdgePool,
        model: &EdgeModel,
        capacity: &PoolCapacity,
        observed: &Observed,
    ) -> Self {
        let deployment = names::edge(&pool.name_any(), &edge_pool.name, &model.name);
        let previous = observed.replicas(&deployment);
        let target = Target {
            pool: pool.name_any(),
            edge_pool: edge_pool.name.clone(),
            model: model.name.clone(),
            agents: ready_agents(observed, &edge_pool.name, model),
        };
        Self {
            deployment,
            target,
            nodes: i32::try_from(capacity.nodes).unwrap_or(i32::MAX),
            fits: capacity.fits.get(&model.name).copied().unwrap_or(0),
            max: edge_pool.replicas.max,
            previous,
            current: previous.unwrap_or(edge_pool.replicas.min),
        }
    }

    /// The plan, once the queue was measured (or not) and the autoscaler decided.
    pub fn into_plan(self, measured: Result<f64, String>, decision: Decision) -> ModelPlan {
        ModelPlan {
            edge_pool: self.target.edge_pool,
            model: self.target.model,
            deployment: self.deployment,
            nodes: self.nodes,
            fits: self.fits,
            max: self.max,
            previous: self.previous,
            replicas: decision.replicas,
            queue: measured.as_ref().ok().copied(),
            unmeasured: measured.err(),
            reason: decision.reason,
            woken_by: decision.woken_by,
            agents: self.target.agents,
        }
    }
}

/// `ip:port` of every live gateway pod, ready or not: a gateway whose readiness flips (cloud
/// probe, draining) would otherwise move the sum, and one that is starting makes it unknown,
/// which holds replicas, rather than lower.
pub fn gateways(observed: &Observed) -> Vec<String> {
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

/// `ip:port` of the edge agents of the ready pods of one model.
pub fn ready_agents(observed: &Observed, edge_pool: &str, model: &EdgeModel) -> Vec<String> {
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
