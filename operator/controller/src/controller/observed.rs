//! What the cluster reports about a pool's children, read from the caches once per reconcile
//! (and per autoscaler sync) and shared by the replica plan and the status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::cache::{Caches, labelled};
use crate::children::names::POOL_LABEL;
use pice_api::InferencePool;

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
    /// The pool's Deployments and pods as the caches hold them.
    pub fn of(pool: &InferencePool, caches: &Caches) -> Self {
        let (name, namespace) = (pool.name_any(), pool.namespace().unwrap_or_default());
        let deployments = labelled(&caches.deployments, &namespace, POOL_LABEL, &name);
        let pods = labelled(&caches.pods, &namespace, POOL_LABEL, &name);
        Self {
            deployments: deployments.iter().map(|d| (d.name_any(), d.as_ref().clone())).collect(),
            pods: pods.iter().map(|p| p.as_ref().clone()).collect(),
        }
    }

    /// The replicas a Deployment asks for now (`None` when it does not exist yet).
    pub fn replicas(&self, name: &str) -> Option<i32> {
        self.deployments.get(name).and_then(|d| d.spec.as_ref()?.replicas)
    }

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
