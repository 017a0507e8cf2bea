//! The desired children of a pool, built as plain objects from the spec (no API calls).

mod cloud;
mod edge;
mod gateway;
pub mod names;
mod pod;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{Resource, ResourceExt};

use crate::api::InferencePool;
pub use cloud::url as cloud_url;
pub use gateway::url as gateway_url;
pub use workload::Identity;

/// Images and ports of the containers PICE itself ships.
#[derive(Clone, Debug)]
pub struct Images {
    /// Image of the `pice-edge-agent` sidecar.
    pub edge_agent: String,
    /// Image of `pice-gateway`.
    pub gateway: String,
}

/// gRPC port of the edge agent sidecar.
pub const AGENT_GRPC_PORT: i32 = 50051;
/// Metrics port of the edge agent sidecar.
pub const AGENT_METRICS_PORT: i32 = 9090;
/// Container port of the gateway.
pub const GATEWAY_CONTAINER_PORT: i32 = 8080;

/// Replicas of each edge Deployment, by Deployment name; missing names get `replicas.min`.
pub type EdgeReplicas = BTreeMap<String, i32>;

/// Every object the operator owns for one pool.
#[derive(Clone, Debug, Default)]
pub struct Children {
    /// Cloud, edge and gateway Deployments.
    pub deployments: Vec<Deployment>,
    /// Cloud and gateway Services, headless edge Services.
    pub services: Vec<Service>,
    /// The gateway's rendered configuration.
    pub config_maps: Vec<ConfigMap>,
    /// The gateway's ServiceAccount.
    pub service_accounts: Vec<ServiceAccount>,
    /// The gateway's Role to watch EndpointSlices.
    pub roles: Vec<Role>,
    /// Binds the gateway's Role to its ServiceAccount.
    pub role_bindings: Vec<RoleBinding>,
    /// Budgets of workloads with more than one replica.
    pub disruption_budgets: Vec<PodDisruptionBudget>,
}

/// Builds the children of a validated pool.
pub fn build(pool: &InferencePool, images: &Images, edge_replicas: &EdgeReplicas) -> Children {
    let mut children = Children::default();
    let owner = pool.controller_owner_ref(&()).unwrap_or_default();
    let base = Identity {
        name: pool.name_any(),
        namespace: pool.namespace().unwrap_or_default(),
        labels: BTreeMap::new(),
        owner,
    };
    cloud::build(pool, &base, &mut children);
    edge::build(pool, &base, images, edge_replicas, &mut children);
    gateway::build(pool, &base, images, &mut children);
    children
}

impl Children {
    /// Adds a Deployment, and a disruption budget when it runs more than one pod.
    fn add_workload(&mut self, id: &Identity, deployment: Deployment) {
        let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if replicas > 1 {
            self.disruption_budgets.push(workload::disruption_budget(id));
        }
        self.deployments.push(deployment);
    }

    /// Names of all children of kind `K`, for pruning objects the spec no longer asks for.
    pub fn names_of<K: Resource<DynamicType = ()>>(&self) -> Vec<String> {
        let kind = K::kind(&());
        let names = |metas: Vec<Option<&String>>| metas.into_iter().flatten().cloned().collect();
        match kind.as_ref() {
            "Deployment" => names(self.deployments.iter().map(|o| o.metadata.name.as_ref()).collect()),
            "Service" => names(self.services.iter().map(|o| o.metadata.name.as_ref()).collect()),
            "PodDisruptionBudget" => {
                names(self.disruption_budgets.iter().map(|o| o.metadata.name.as_ref()).collect())
            }
            _ => Vec::new(),
        }
    }
}
