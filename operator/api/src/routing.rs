//! Routing of requests through the progressive gateway: mode, sketch, expansion, ensemble and
//! fallback settings (`docs/design.md` describes the algorithm they tune).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the gateway serves requests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutingSpec {
    /// `auto` picks progressive or cloud-only per request, `progressive` always sketches on the
    /// cloud and expands on the edge, `cloud` sends everything to the cloud LLM.
    #[serde(default)]
    pub mode: RoutingMode,
    /// The sketch the cloud LLM writes.
    #[serde(default)]
    pub sketch: SketchSpec,
    /// The expansion of sketch points on the edge.
    #[serde(default)]
    pub expansion: ExpansionSpec,
    /// Ensembles of edge SLMs for one point.
    #[serde(default)]
    pub ensemble: EnsembleSpec,
    /// What happens when an edge expansion fails or is late.
    #[serde(default)]
    pub fallback: FallbackSpec,
    /// Which requests the pool takes on under load.
    #[serde(default)]
    pub admission: AdmissionSpec,
}

/// Routing mode of a pool.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RoutingMode {
    /// Decide per request from the question and live load.
    #[default]
    Auto,
    /// Always sketch on the cloud and expand on the edge.
    Progressive,
    /// Always answer on the cloud LLM.
    Cloud,
}

impl RoutingMode {
    /// The mode as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Progressive => "progressive",
            Self::Cloud => "cloud",
        }
    }
}

/// Size of the sketch the cloud LLM writes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SketchSpec {
    /// Most points in a sketch (1–20).
    #[serde(default = "default_max_points")]
    #[schemars(range(min = 1, max = 20))]
    pub max_points: i32,
    /// Words per point the cloud LLM is asked for (1–100).
    #[serde(default = "default_words_per_point")]
    #[schemars(range(min = 1, max = 100))]
    pub words_per_point: i32,
}

impl Default for SketchSpec {
    fn default() -> Self {
        Self { max_points: default_max_points(), words_per_point: default_words_per_point() }
    }
}

/// Budgets of one point's expansion on the edge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpansionSpec {
    /// Most tokens an SLM writes for one point (1–8192).
    #[serde(default = "default_max_tokens_per_point")]
    #[schemars(range(min = 1, max = 8192))]
    pub max_tokens_per_point: i32,
    /// Milliseconds an edge expansion may take before the point falls back (1–600000).
    #[serde(default = "default_deadline_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub deadline_ms: i32,
}

impl Default for ExpansionSpec {
    fn default() -> Self {
        Self { max_tokens_per_point: default_max_tokens_per_point(), deadline_ms: default_deadline_ms() }
    }
}

/// Ensemble expansion: several SLMs expand a point and the best candidate wins.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnsembleSpec {
    /// Candidates per point (1 = no ensemble, at most 5); each costs one edge expansion.
    #[serde(default = "default_candidates")]
    #[schemars(range(min = 1, max = 5))]
    pub candidates: i32,
    /// How the winning candidate is chosen.
    #[serde(default)]
    pub selector: EnsembleSelector,
}

impl Default for EnsembleSpec {
    fn default() -> Self {
        Self { candidates: default_candidates(), selector: EnsembleSelector::default() }
    }
}

/// Selection rule of an ensemble.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EnsembleSelector {
    /// The candidate most similar to the others.
    #[default]
    Consensus,
    /// The candidate with the highest mean token log-probability.
    Logprob,
}

/// Fallback chain of a failed or late edge point.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FallbackSpec {
    /// Other edge replicas tried before giving up on the edge (0–5).
    #[serde(default = "default_edge_retries")]
    #[schemars(range(min = 0, max = 5))]
    pub edge_retries: i32,
    /// Expand the point on the cloud LLM when the edge fails.
    #[serde(default = "default_true")]
    pub to_cloud: bool,
}

impl Default for FallbackSpec {
    fn default() -> Self {
        Self { edge_retries: default_edge_retries(), to_cloud: true }
    }
}

/// Admission under load: a request that would go progressive is admitted only with full point
/// budgets; when the edge would miss the point deadline it goes cloud-only, and when the cloud
/// would take longer than `maxLatencyMs` too it is refused with 429 and `Retry-After`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionSpec {
    /// Longest estimated latency, in milliseconds, of an answer the pool still takes on
    /// (1000–3600000).
    #[serde(default = "default_max_latency_ms")]
    #[schemars(range(min = 1000, max = 3_600_000))]
    pub max_latency_ms: i32,
}

impl Default for AdmissionSpec {
    fn default() -> Self {
        Self { max_latency_ms: default_max_latency_ms() }
    }
}

fn default_max_latency_ms() -> i32 {
    60_000
}
fn default_max_points() -> i32 {
    8
}
fn default_words_per_point() -> i32 {
    12
}
fn default_max_tokens_per_point() -> i32 {
    160
}
fn default_deadline_ms() -> i32 {
    4000
}
fn default_candidates() -> i32 {
    1
}
fn default_edge_retries() -> i32 {
    1
}
fn default_true() -> bool {
    true
}
