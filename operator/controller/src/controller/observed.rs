//! What the cluster reports about a pool's children, read from the caches once per reconcile
//! (and per autoscaler sync) and shared by the replica plan and the status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    pub deployments: BTreeMap<String, Arc<Deployment>>,
    /// The pool's pods.
    pub pods: Vec<Arc<Pod>>,
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
        Self { deployments: deployments.into_iter().map(|d| (d.name_any(), d)).collect(), pods }
    }

    /// The Deployments and pods of every pool, by namespace and pool name, from one pass over
    /// the caches (the autoscaler looks at every pool each sync).
    pub fn of_every_pool(caches: &Caches) -> HashMap<(String, String), Self> {
        let mut every: HashMap<(String, String), Self> = HashMap::new();
        let pool_of = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            Some((meta.namespace.clone()?, meta.labels.as_ref()?.get(POOL_LABEL)?.clone()))
        };
        for deployment in caches.deployments.state() {
            if let Some(key) = pool_of(&deployment.metadata) {
                every.entry(key).or_default().deployments.insert(deployment.name_any(), deployment);
            }
        }
        for pod in caches.pods.state() {
            if let Some(key) = pool_of(&pod.metadata) {
                every.entry(key).or_default().pods.push(pod);
            }
        }
        every
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
