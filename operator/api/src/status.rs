//! The observed state of an `InferencePool`, written by the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of the pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded` and `Placed`, in the standard condition shape.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The cloud tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudStatus>,
    /// One entry per edge pool and model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_pools: Vec<EdgePoolStatus>,
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayStatus>,
    /// Ready and desired edge replicas over all edge pools, as `ready/desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_replicas: Option<String>,
    /// Measured queue depth (waiting plus running requests) over all edge pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<f64>,
}

/// Observed state of the cloud tier.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudStatus {
    /// LLM server pods that are ready (0 for an external endpoint).
    pub ready_replicas: i32,
    /// LLM server pods asked for (0 for an external endpoint).
    pub desired_replicas: i32,
    /// URL the gateway uses to reach the cloud LLM.
    pub url: String,
}

/// Observed state of one model on one edge pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgePoolStatus {
    /// Name of the edge pool.
    pub name: String,
    /// Model served.
    pub model: String,
    /// Replicas that are ready.
    pub ready_replicas: i32,
    /// Replicas asked for.
    pub desired_replicas: i32,
    /// Nodes that match the pool's selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i32>,
    /// Measured queue depth (waiting plus running requests over ready replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<f64>,
    /// When the replica count last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Human-readable note, for example why pods are not scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Gateway pods that are ready.
    pub ready_replicas: i32,
    /// In-cluster URL of the pool's OpenAI-compatible API.
    pub url: String,
}
