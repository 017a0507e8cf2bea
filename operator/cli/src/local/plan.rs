//! What `pice local` starts for a pool, decided without starting anything: the cloud LLM, one
//! edge replica per edge pool × model × `replicas.min` (at least one), and the gateway's
//! configuration. Pure, so the choices are unit-tested.

use std::path::PathBuf;

use kube::ResourceExt;

use super::LocalError;
use pice_api::gateway_config::{CloudTarget, GatewayConfig};
use pice_api::{InferencePool, RoutingSpec};

/// `pice-sim` profile of the cloud LLM.
pub const CLOUD_PROFILE: &str = "cloud-llama70b-h100x4";
/// `pice-sim` profile of small CPU models (SmolLM and the like).
pub const SMALL_EDGE_PROFILE: &str = "edge-smollm-cpu";
/// `pice-sim` profile of other edge models.
pub const EDGE_PROFILE: &str = "edge-qwen1.5b-jetson-orin";

/// What serves the edge models.
#[derive(Clone, Debug, PartialEq)]
pub enum EdgeSource {
    /// A `pice-sim` per replica, with the profile closest to the model.
    Sim,
    /// llama.cpp inside each edge agent, on this GGUF file.
    Llama(PathBuf),
    /// The user's OpenAI-compatible servers: one URL for every model, or one per model in
    /// the pool's order.
    Urls(Vec<String>),
}

/// The cloud LLM.
#[derive(Clone, Debug, PartialEq)]
pub enum Cloud {
    /// A `pice-sim` with [`CLOUD_PROFILE`] serving `model`.
    Sim { model: String },
    /// The user's OpenAI-compatible server at `root` (the URL before `/v1`).
    Url { root: String, model: String },
}

/// What model server an edge replica's agent talks to.
#[derive(Clone, Debug, PartialEq)]
pub enum EdgeBackend {
    /// A `pice-sim` with this profile, started for the replica.
    Sim { profile: &'static str },
    /// llama.cpp in the agent.
    Llama(PathBuf),
    /// An OpenAI-compatible server at this root URL (before `/v1`).
    Url(String),
}

/// One edge agent to start.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeReplica {
    pub edge_pool: String,
    pub model: String,
    /// 1-based number among the replicas of this pool and model.
    pub replica: u32,
    pub slots: i32,
    pub backend: EdgeBackend,
}

impl EdgeReplica {
    /// A short name for progress lines and log files: `pool/model#n`.
    pub fn label(&self) -> String {
        format!("{}/{}#{}", self.edge_pool, self.model, self.replica)
    }
}

/// Everything to start, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub pool: String,
    pub cloud: Cloud,
    pub edges: Vec<EdgeReplica>,
    pub routing: RoutingSpec,
}

/// The plan for `pool` with the cloud at `cloud_url` (simulated when `None`) and edges from `edge`.
pub fn plan(pool: &InferencePool, cloud_url: Option<&str>, edge: &EdgeSource) -> Result<Plan, LocalError> {
    let model = pool.spec.cloud.model.clone();
    let cloud = match cloud_url {
        Some(url) => Cloud::Url { root: api_root(url), model },
        None => Cloud::Sim { model },
    };
    let models: Vec<_> =
        pool.spec.edge.pools.iter().flat_map(|p| p.models.iter().map(move |m| (p, m))).collect();
    let urls = match edge {
        EdgeSource::Urls(urls) if urls.len() != 1 && urls.len() != models.len() => {
            return Err(LocalError::Usage(format!(
                "{} --edge-url given for {} edge models: give one URL for all, or one per model in the pool's order",
                urls.len(),
                models.len()
            )));
        }
        EdgeSource::Urls(urls) => urls.clone(),
        EdgeSource::Sim | EdgeSource::Llama(_) => Vec::new(),
    };
    let mut edges = Vec::new();
    for (index, (edge_pool, model)) in models.iter().enumerate() {
        let backend = match edge {
            EdgeSource::Sim => EdgeBackend::Sim { profile: sim_profile(&model.name) },
            EdgeSource::Llama(path) => EdgeBackend::Llama(path.clone()),
            EdgeSource::Urls(_) => EdgeBackend::Url(api_root(&urls[index.min(urls.len() - 1)])),
        };
        for replica in 1..=edge_pool.replicas.min.max(1) {
            edges.push(EdgeReplica {
                edge_pool: edge_pool.name.clone(),
                model: model.name.clone(),
                replica: replica.unsigned_abs(),
                slots: model.slots,
                backend: backend.clone(),
            });
        }
    }
    Ok(Plan { pool: pool.name_any(), cloud, edges, routing: pool.spec.routing.clone() })
}

/// The simulator profile closest to an edge model, by its name.
fn sim_profile(model: &str) -> &'static str {
    if model.to_ascii_lowercase().contains("smollm") { SMALL_EDGE_PROFILE } else { EDGE_PROFILE }
}

/// The root of an OpenAI-compatible API from a URL given with or without `/v1`.
pub fn api_root(url: &str) -> String {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).to_owned()
}

/// The gateway's configuration for `plan` with the cloud at `cloud_root`; edge agents are
/// passed as static endpoints, so no edge targets are listed.
pub fn gateway_config(plan: &Plan, cloud_root: &str, port: u16) -> GatewayConfig {
    let model = match &plan.cloud {
        Cloud::Sim { model } | Cloud::Url { model, .. } => model.clone(),
    };
    GatewayConfig {
        pool: plan.pool.clone(),
        port: i32::from(port),
        cloud: CloudTarget { url: cloud_root.to_owned(), model },
        edge: Vec::new(),
        routing: plan.routing.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::local::pool_file::parse;

    fn example() -> InferencePool {
        parse(include_str!("../../../../deploy/examples/assistant.yaml")).unwrap()
    }

    #[test]
    fn every_edge_pool_and_model_gets_its_minimum_replicas_of_simulators() {
        let plan = plan(&example(), None, &EdgeSource::Sim).unwrap();
        let labels: Vec<_> = plan.edges.iter().map(EdgeReplica::label).collect();
        assert_eq!(
            labels,
            [
                "store-east/qwen2.5-1.5b-instruct#1",
                "store-east/qwen2.5-1.5b-instruct#2",
                "factory-west/smollm2-360m-instruct#1"
            ]
        );
        assert_eq!(plan.edges[0].backend, EdgeBackend::Sim { profile: EDGE_PROFILE });
        assert_eq!(plan.edges[2].backend, EdgeBackend::Sim { profile: SMALL_EDGE_PROFILE });
        assert_eq!(plan.cloud, Cloud::Sim { model: "llama-3.1-70b-instruct".into() });
    }

    #[test]
    fn a_pool_that_may_scale_to_zero_still_gets_one_replica() {
        let mut pool = example();
        pool.spec.edge.pools.truncate(1);
        pool.spec.edge.pools[0].replicas.min = 0;
        assert_eq!(plan(&pool, None, &EdgeSource::Sim).unwrap().edges.len(), 1);
    }

    #[test]
    fn user_urls_are_taken_with_or_without_v1_one_for_all_or_one_per_model() {
        let one = EdgeSource::Urls(vec!["http://edge:8080/v1/".into()]);
        let plan_one = plan(&example(), Some("http://cloud:8000/v1"), &one).unwrap();
        assert!(plan_one.edges.iter().all(|e| e.backend == EdgeBackend::Url("http://edge:8080".into())));
        assert_eq!(
            plan_one.cloud,
            Cloud::Url { root: "http://cloud:8000".into(), model: "llama-3.1-70b-instruct".into() }
        );
        let two = EdgeSource::Urls(vec!["http://a".into(), "http://b".into()]);
        assert_eq!(
            plan(&example(), None, &two).unwrap().edges[2].backend,
            EdgeBackend::Url("http://b".into())
        );
        let three = EdgeSource::Urls(vec!["http://a".into(), "http://b".into(), "http://c".into()]);
        let error = plan(&example(), None, &three).unwrap_err().to_string();
        assert!(error.contains("3 --edge-url given for 2 edge models"), "{error}");
    }

    #[test]
    fn the_simulator_profiles_exist() {
        for profile in [CLOUD_PROFILE, EDGE_PROFILE, SMALL_EDGE_PROFILE] {
            assert!(pice_sim::profiles::NAMES.contains(&profile), "{profile}");
        }
    }

    #[test]
    fn the_gateway_config_serves_the_pool_with_its_routing() {
        let plan = plan(&example(), None, &EdgeSource::Sim).unwrap();
        let config = gateway_config(&plan, "http://127.0.0.1:9", 8080);
        assert_eq!(
            (config.pool.as_str(), config.port, config.cloud.model.as_str()),
            ("assistant", 8080, "llama-3.1-70b-instruct")
        );
        assert_eq!(config.routing, example().spec.routing);
    }
}
