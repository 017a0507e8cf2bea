//! What the cluster reports about a pool's children, read once per reconcile and shared by the
//! replica plan and the status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

/// What the cluster reports about a pool's children.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The pool's Deployments by name.
    pub deployments: BTreeMap<String, Deployment>,
    /// The pool's pods.
    pub pods: Vec<Pod>,
}

/// Replica counts of one Deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rollout {
    pub desired: i32,
    pub ready: i32,
    pub done: bool,
}

impl Observed {
    pub fn rollout(&self, name: &str, desired: i32) -> Rollout {
        let Some(deployment) = self.deployments.get(name) else {
            return Rollout { desired, ready: 0, done: false };
        };
        let status = deployment.status.clone().unwrap_or_default();
        let ready = status.ready_replicas.unwrap_or(0);
        let current = status.observed_generation >= deployment.metadata.generation;
        let updated = status.updated_replicas.unwrap_or(0) >= desired;
        let surplus = status.replicas.unwrap_or(0) > desired;
        Rollout { desired, ready, done: current && updated && !surplus && ready >= desired }
    }
}
