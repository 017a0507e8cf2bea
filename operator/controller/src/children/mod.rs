//! The desired children of a pool, built as plain objects from the spec (no API calls).

mod cloud;
mod edge;
mod gateway;
pub mod names;
mod pod;
pub mod weights;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{Resource, ResourceExt};

use crate::error::Result;

pub use cloud::url as cloud_url;
pub use gateway::url as gateway_url;
use pice_api::InferencePool;
pub use workload::Identity;

/// Images and ports of the containers PICE itself ships.
#[derive(Clone, Debug)]
pub struct Images {
    /// Image of the `pice-edge-agent` sidecar.
    pub edge_agent: String,
    /// Image of `pice-edge-agent` built with llama.cpp, for edge models of engine `llama`.
    pub edge_agent_llama: String,
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

/// Builds the children of a validated pool; fails only if the gateway's configuration cannot be
/// serialised.
pub fn build(pool: &InferencePool, images: &Images, edge_replicas: &EdgeReplicas) -> Result<Children> {
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
    gateway::build(pool, &base, images, &mut children)?;
    Ok(children)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pool;
    use pice_api::gateway_config::GatewayConfig;

    fn images() -> Images {
        Images {
            edge_agent: "agent:test".into(),
            edge_agent_llama: "llama:test".into(),
            gateway: "gateway:test".into(),
        }
    }

    fn names<T: Resource>(objects: &[T]) -> Vec<String> {
        objects.iter().map(|o| o.meta().name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn the_example_pool_yields_every_child_with_owner_and_labels() {
        let children = build(&pool(), &images(), &EdgeReplicas::new()).unwrap();
        assert_eq!(
            names(&children.deployments),
            [
                "assistant-cloud",
                "assistant-store-east-qwen2-5-1-5b-instruct",
                "assistant-factory-west-smollm2-360m-instruct",
                "assistant-gateway"
            ]
        );
        assert_eq!(children.services.len(), 4);
        assert_eq!(
            names(&children.disruption_budgets),
            ["assistant-cloud", "assistant-store-east-qwen2-5-1-5b-instruct", "assistant-gateway"]
        );
        for d in &children.deployments {
            let owner = &d.metadata.owner_references.as_ref().expect("owner")[0];
            assert_eq!((owner.kind.as_str(), owner.controller), ("InferencePool", Some(true)));
            assert_eq!(
                d.metadata.labels.as_ref().and_then(|l| l.get(names::POOL_LABEL)).map(String::as_str),
                Some("assistant")
            );
        }
    }

    #[test]
    fn edge_pods_carry_the_pool_placement_and_an_agent_sidecar() {
        let children = build(&pool(), &images(), &EdgeReplicas::new()).unwrap();
        let edge = &children.deployments[1];
        let spec = edge.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.as_ref().expect("pod");
        assert_eq!(
            pod.node_selector.as_ref().and_then(|s| s.get("pice.dev/edge-pool")).map(String::as_str),
            Some("store-east")
        );
        assert_eq!(pod.tolerations.as_ref().map(Vec::len), Some(1));
        assert_eq!(pod.containers[1].image.as_deref(), Some("agent:test"));
        assert!(
            pod.containers[1]
                .args
                .as_ref()
                .expect("args")
                .contains(&"--backend-url=http://127.0.0.1:8080/v1".to_string())
        );
    }

    #[test]
    fn a_llama_model_is_one_agent_container_loading_the_weights_file_the_init_container_fetched() {
        let mut p = pool();
        let model = &mut p.spec.edge.pools[0].models[0];
        model.engine = pice_api::ModelEngine::Llama;
        model.image = String::new();
        model.weights = Some(
            serde_json::from_value(serde_json::json!({
                "url": {"url": "http://files/smollm2.gguf", "sha256": "ab".repeat(32)}
            }))
            .unwrap(),
        );
        let children = build(&p, &images(), &EdgeReplicas::new()).unwrap();
        let pod = children.deployments[1].spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod");
        assert_eq!(pod.containers.len(), 1);
        let agent = &pod.containers[0];
        assert_eq!((agent.name.as_str(), agent.image.as_deref()), ("edge-agent", Some("llama:test")));
        let args = agent.args.clone().unwrap_or_default();
        assert!(args.contains(&"--backend=llama".to_string()), "{args:?}");
        assert!(args.contains(&"--model-path=/models/smollm2.gguf".to_string()), "{args:?}");
        let mount = &agent.volume_mounts.as_ref().expect("weights mounted")[0];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/models", Some(true)));
        let init = &pod.init_containers.as_ref().expect("fetcher")[0];
        assert_eq!(init.image.as_deref(), Some("agent:test"));
    }

    #[test]
    fn pices_own_containers_meet_the_restricted_pod_security_standard_and_the_models_keep_theirs() {
        let children = build(&pool(), &images(), &EdgeReplicas::new()).unwrap();
        let containers: Vec<_> = children
            .deployments
            .iter()
            .flat_map(|d| {
                d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod").containers.clone()
            })
            .collect();
        for container in &containers {
            let ours = container.name == "edge-agent" || container.name == "gateway";
            let security = container.security_context.as_ref();
            assert_eq!(security.is_some(), ours, "{}", container.name);
            if let Some(security) = security {
                assert_eq!(security.run_as_non_root, Some(true));
                assert_eq!(security.allow_privilege_escalation, Some(false));
                let dropped = security.capabilities.as_ref().and_then(|c| c.drop.clone());
                assert_eq!(dropped, Some(vec!["ALL".to_string()]));
                let seccomp = security.seccomp_profile.as_ref().map(|p| p.type_.as_str());
                assert_eq!(seccomp, Some("RuntimeDefault"));
            }
        }
        assert!(containers.iter().any(|c| c.name == "gateway"));
        assert!(containers.iter().any(|c| c.name == "edge-agent"));
    }

    #[test]
    fn the_gateway_turns_ready_without_an_edge_only_when_an_edge_pool_may_scale_to_zero() {
        let ready_without_edge = |pool: &InferencePool| {
            let children = build(pool, &images(), &EdgeReplicas::new()).unwrap();
            let gateway = children.deployments.iter().find(|d| d.name_any() == "assistant-gateway");
            let pod = gateway.and_then(|d| d.spec.as_ref()?.template.spec.clone()).expect("gateway pod");
            pod.containers[0].args.clone().unwrap_or_default().contains(&"--ready-without-edge".to_string())
        };
        assert!(!ready_without_edge(&pool()));
        let mut scales_to_zero = pool();
        scales_to_zero.spec.edge.pools[1].replicas.min = 0;
        assert!(ready_without_edge(&scales_to_zero));
    }

    #[test]
    fn edge_replicas_from_the_plan_override_the_minimum() {
        let plan = EdgeReplicas::from([("assistant-store-east-qwen2-5-1-5b-instruct".to_string(), 5)]);
        let children = build(&pool(), &images(), &plan).unwrap();
        assert_eq!(children.deployments[1].spec.as_ref().and_then(|s| s.replicas), Some(5));
    }

    #[test]
    fn an_external_cloud_endpoint_runs_no_cloud_pods_and_reaches_the_endpoint() {
        let mut p = pool();
        p.spec.cloud.image = None;
        p.spec.cloud.endpoint = Some("https://llm.example.com/v1/".into());
        let children = build(&p, &images(), &EdgeReplicas::new()).unwrap();
        assert!(!names(&children.deployments).contains(&"assistant-cloud".to_string()));
        let text =
            &children.config_maps[0].data.as_ref().expect("data")[pice_api::gateway_config::CONFIG_FILE];
        let config: GatewayConfig = serde_json::from_str(text).expect("config parses");
        assert_eq!(config.cloud.url, "https://llm.example.com");
        assert_eq!(config.edge.len(), 2);
    }

    #[test]
    fn a_routing_change_changes_the_gateway_config_hash() {
        let hash = |p: &InferencePool| {
            let children = build(p, &images(), &EdgeReplicas::new()).unwrap();
            let gateway = children.deployments.last().expect("gateway").clone();
            gateway
                .spec
                .and_then(|s| s.template.metadata?.annotations?.get(gateway::CONFIG_HASH_ANNOTATION).cloned())
        };
        let mut p = pool();
        let before = hash(&p);
        p.spec.routing.mode = pice_api::RoutingMode::Cloud;
        assert_ne!(before, hash(&p));
    }
}
