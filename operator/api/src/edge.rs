//! The edge tier of a pool: node pools of small language models (SLMs) and their autoscaling.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::weights::ModelWeights;

/// The edge tier: SLM node pools that expand sketch points in parallel.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.pools.all(p, self.pools.exists_one(q, q.name == p.name))")
    .message("edge.pools[].name must be unique within the pool")
    .field_path(".pools"))]
pub struct EdgeSpec {
    /// Edge node pools, each a set of nodes (a store, a factory, a cell site) selected by labels.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub pools: Vec<EdgePool>,
}

/// One edge node pool and the SLMs PICE runs on it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.models.all(m, self.models.exists_one(n, n.name == m.name))")
    .message("edge.pools[].models[].name must be unique within an edge pool")
    .field_path(".models"))]
pub struct EdgePool {
    /// Name of the edge pool: a DNS label (lower-case letters, digits and '-', at most 40
    /// characters), used in the names of the pool's Deployments and Services.
    #[schemars(schema_with = "super::schema::dns_label")]
    pub name: String,

    /// Node labels that select the nodes of this edge pool, for example
    /// `{pice.dev/edge-pool: store-east}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations for the taints of this pool's nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// The SLMs served on this pool; each gets its own Deployment of replicas.
    #[schemars(length(min = 1, max = 8))]
    pub models: Vec<EdgeModel>,

    /// Bounds on the number of replicas of each model in this pool.
    #[serde(default)]
    pub replicas: ReplicaRange,

    /// How the number of replicas follows the measured queue depth.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,
}

/// An SLM served on an edge pool: by an OpenAI-compatible model server fronted by the
/// `pice-edge-agent` sidecar (engine `server`), or by the edge agent itself running the GGUF
/// model in-process with llama.cpp (engine `llama`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.engine == 'llama' || size(self.image) > 0")
    .message("image is required unless engine is llama"))]
#[x_kube(validation = Rule::new("self.engine != 'llama' || (has(self.weights) && (has(self.weights.url) || has(self.weights.file)))")
    .message("engine llama needs weights with a url or a file (the GGUF file the agent loads)"))]
pub struct EdgeModel {
    /// Model name sent to the model server, for example `qwen2.5-1.5b-instruct`. Unique within
    /// the edge pool.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,

    /// How the model is served: `server` (default), a model server container (`image`, `args`,
    /// `port`) beside the edge agent; or `llama`, the edge agent alone runs the GGUF file of
    /// `weights` in-process with llama.cpp (the operator's llama agent image).
    #[serde(default)]
    pub engine: ModelEngine,

    /// Container image of the model server (llama.cpp `llama-server`, vLLM, Ollama, ...);
    /// required with engine `server`.
    #[serde(default)]
    pub image: String,

    /// Arguments of the model server container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// Port on which the model server listens (1–65535).
    #[serde(default = "default_model_port")]
    #[schemars(schema_with = "super::schema::port")]
    pub port: i32,

    /// Compute resources of the model server container; placement counts its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Expansions one replica runs at once (the edge agent's slots; default 4).
    #[serde(default = "default_slots")]
    #[schemars(range(min = 1, max = 256))]
    pub slots: i32,

    /// Where the model server's weights come from (an image volume, a PVC, a host path or a
    /// URL with a sha256); without it the model server's image must hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<ModelWeights>,
}

/// How an edge model is served.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ModelEngine {
    /// A model server container beside the edge agent, spoken to over OpenAI HTTP.
    #[default]
    Server,
    /// The edge agent itself, with llama.cpp in-process (no model server container).
    Llama,
}

/// Bounds on the replicas of each model of an edge pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.min <= self.max")
    .message("replicas.min must be less than or equal to replicas.max"))]
pub struct ReplicaRange {
    /// Fewest replicas (0 lets the pool scale to zero; requests then go to the cloud).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub min: i32,

    /// Most replicas; PICE never asks for more than the pool's nodes can hold.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max: i32,
}

impl Default for ReplicaRange {
    fn default() -> Self {
        Self { min: default_min_replicas(), max: default_max_replicas() }
    }
}

/// Autoscaling of an edge pool's replicas on measured queue depth (HPA-like semantics).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.source != 'prometheus' || has(self.prometheus)")
    .message("autoscaling.prometheus (url and query) is required when autoscaling.source is prometheus")
    .reason(Reason::FieldValueRequired))]
pub struct AutoscalingSpec {
    /// Target of waiting plus running requests per replica (must be greater than 0).
    #[serde(default = "default_target_queue_depth")]
    #[x_kube(validation = Rule::new("self > 0.0").message("autoscaling.targetQueueDepth must be greater than 0"))]
    pub target_queue_depth: f64,

    /// Seconds a higher recommendation must persist before scaling up (0 = at once).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_up_stabilization_seconds: i32,

    /// Scale down only to the highest recommendation of this many past seconds.
    #[serde(default = "default_scale_down_window")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: i32,

    /// Where queue depth is measured: the edge agents' `Load` RPC or a PromQL query.
    #[serde(default)]
    pub source: QueueSource,

    /// The Prometheus query used when `source` is `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            target_queue_depth: default_target_queue_depth(),
            scale_up_stabilization_seconds: 0,
            scale_down_stabilization_seconds: default_scale_down_window(),
            source: QueueSource::default(),
            prometheus: None,
        }
    }
}

/// Source of the measured queue depth.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum QueueSource {
    /// Ask each edge agent's `Load` RPC.
    #[default]
    Agents,
    /// Evaluate a PromQL query.
    Prometheus,
}

/// A PromQL query that returns the total queue depth of one edge pool and model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Base URL of the Prometheus HTTP API, for example `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// PromQL query; `$pool`, `$edgePool` and `$model` are replaced before it runs.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
}

fn default_model_port() -> i32 {
    8080
}
fn default_slots() -> i32 {
    4
}
fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    4
}
fn default_target_queue_depth() -> f64 {
    4.0
}
fn default_scale_down_window() -> i32 {
    120
}
