//! One point of a progressive answer: what all points of an answer share (question, context,
//! seed, sampling), what each point carries (its outline so far, its budget), what a point sends
//! the merger, how it was written in the end, and the fixed vocabularies of the fallback and
//! expansion metrics.

use std::sync::Arc;
use std::time::Duration;

use pice_wire::generation::{ExpansionRequest, Sampling};
use pice_wire::proto::ExpandRequest;
use tokio::time::Instant;

use super::state::Gateway;

/// Why a fallback step was taken; the `reason` label of `pice_gateway_fallbacks_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// The replica's queue was full.
    EdgeFull,
    /// The replica failed or went away.
    EdgeError,
    /// The replica missed the point's deadline.
    EdgeDeadline,
    /// No usable replica was left to try.
    NoEdge,
    /// The cloud could not expand the point.
    CloudError,
    /// The cloud missed the point's deadline.
    CloudDeadline,
    /// The sketch had no usable point; the cloud answered alone.
    EmptySketch,
    /// The sketch stream broke after some points: the answer has only those.
    SketchCut,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdgeFull => "edge_full",
            Self::EdgeError => "edge_error",
            Self::EdgeDeadline => "edge_deadline",
            Self::NoEdge => "no_edge",
            Self::CloudError => "cloud_error",
            Self::CloudDeadline => "cloud_deadline",
            Self::EmptySketch => "empty_sketch",
            Self::SketchCut => "sketch_cut",
        }
    }
}

/// Who wrote a point in the end; the `source` label of the expansion metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Edge,
    Cloud,
    /// Nobody: the sketch line stands in for the expansion.
    Sketch,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::Cloud => "cloud",
            Self::Sketch => "sketch",
        }
    }
}

/// What a point sends the merger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PointEvent {
    Text(String),
    Done(PointOutcome),
}

/// How a point was written and what it cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointOutcome {
    pub source: Source,
    pub fallbacks: u32,
    /// Tokens generated and read on each tier for this point, every finished attempt counted.
    pub edge_tokens: u32,
    pub cloud_tokens: u32,
    pub edge_prompt_tokens: u32,
    pub cloud_prompt_tokens: u32,
}

/// One point to expand, as it was dispatched while the sketch was still being written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointJob {
    /// 0-based position in the answer.
    pub index: usize,
    /// The sketch's points up to this one: all the expansion prompt shows of the outline, so
    /// the point can start before the cloud wrote the next ones.
    pub outline: Vec<String>,
    /// Token budget of this point.
    pub max_tokens: u32,
}

impl PointJob {
    /// The point's sketch line.
    pub fn line(&self) -> &str {
        &self.outline[self.index]
    }
}

/// What every point of one answer shares.
pub struct Expansions {
    pub gateway: Arc<Gateway>,
    /// The answer's id; also the prefix id its points share on the agents.
    pub request_id: String,
    pub question: String,
    /// The client's context for expansion prompts (see [`ExpansionRequest::context`]).
    pub context: String,
    /// Seed of the answer; each point and candidate derives its own from it.
    pub seed: u64,
    /// The client's sampling parameters.
    pub sampling: Sampling,
}

impl Expansions {
    /// The seed of one candidate of one point: the same on every retry of it.
    pub fn seed(&self, point: usize, candidate: usize) -> u64 {
        let salt = (point as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.seed.wrapping_add(salt).wrapping_add(candidate as u64)
    }

    /// The `Expand` request of one candidate of one point.
    pub fn message(&self, point: &PointJob, candidate: usize, want_logprobs: bool) -> ExpandRequest {
        let routing = &self.gateway.config.routing;
        ExpandRequest {
            request_id: format!("{}-{}-{candidate}", self.request_id, point.index),
            question: self.question.clone(),
            sketch: point.outline.clone(),
            point_index: u32::try_from(point.index).unwrap_or(u32::MAX),
            max_tokens: point.max_tokens,
            deadline_ms: u32::try_from(routing.expansion.deadline_ms).unwrap_or(0),
            want_logprobs,
            seed: Some(self.seed(point.index, candidate)),
            temperature: self.sampling.temperature,
            top_p: self.sampling.top_p,
            presence_penalty: self.sampling.presence_penalty,
            frequency_penalty: self.sampling.frequency_penalty,
            stop: self.sampling.stop.clone(),
            context: self.context.clone(),
            prefix_id: self.request_id.clone(),
        }
    }

    /// The same expansion for the cloud LLM, which gets the edge's prompt.
    pub fn request(&self, point: &PointJob) -> ExpansionRequest {
        ExpansionRequest {
            question: self.question.clone(),
            context: self.context.clone(),
            sketch: point.outline.clone(),
            point_index: point.index,
            max_tokens: point.max_tokens,
            want_logprobs: false,
            seed: Some(self.seed(point.index, 0)),
            sampling: self.sampling.clone(),
            prefix_id: self.request_id.clone(),
        }
    }

    /// When an attempt starting now must be finished.
    pub fn deadline(&self) -> Instant {
        let millis = u64::try_from(self.gateway.config.routing.expansion.deadline_ms).unwrap_or(0).max(1);
        Instant::now() + Duration::from_millis(millis)
    }
}
