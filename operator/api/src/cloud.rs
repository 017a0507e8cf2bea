//! The cloud tier of a pool: the LLM that writes sketches and answers cloud-only requests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The cloud LLM tier: either pods that PICE runs on the GPU nodes (`image`), or an LLM served
/// outside the cluster (`endpoint`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.image) || has(self.endpoint)")
        .message("cloud needs either image (LLM pods run by PICE) or endpoint (an LLM served outside the cluster)")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!(has(self.image) && has(self.endpoint))")
        .message("cloud.image and cloud.endpoint are mutually exclusive: set only one"),
    validation = Rule::new("!has(self.endpoint) || (!has(self.replicas) && !has(self.args) && !has(self.resources))")
        .message("cloud.replicas, cloud.args and cloud.resources apply only to pods (cloud.image), not to an external endpoint"),
)]
pub struct CloudSpec {
    /// Model name sent to the cloud LLM server in each request (for example
    /// `llama-3.1-70b-instruct`).
    #[schemars(length(min = 1, max = 253))]
    pub model: String,

    /// Container image of an OpenAI-compatible LLM server (vLLM, SGLang, TGI, llama.cpp) that
    /// PICE runs as a Deployment on the cloud tier. Mutually exclusive with `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Base URL of an OpenAI-compatible LLM served outside the cluster, for example
    /// `https://llm.example.com/v1`. Mutually exclusive with `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && (self.startsWith('http://') || self.startsWith('https://'))")
        .message("cloud.endpoint must be an http:// or https:// URL"))]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,

    /// Arguments of the LLM server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Port on which the LLM server container listens (1–65535, default 8000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::optional_port")]
    pub port: Option<i32>,

    /// Number of LLM server pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: Option<i32>,

    /// Compute resources of the LLM server container, for example
    /// `{limits: {nvidia.com/gpu: 4}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels that select the cloud GPU tier, for example `{pice.dev/tier: cloud}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations for taints on the cloud GPU nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl CloudSpec {
    /// Default port of the cloud LLM server container.
    pub const DEFAULT_PORT: i32 = 8000;

    /// The port the cloud LLM server listens on.
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(Self::DEFAULT_PORT)
    }

    /// The number of cloud LLM pods.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }
}
