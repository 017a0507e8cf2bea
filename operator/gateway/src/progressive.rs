//! Progressive answers: the cloud LLM writes a sketch, the points are planned over the edge
//! replicas and expanded in parallel through their fallback chains, and the merger streams
//! them back in order. A sketch without usable points becomes a cloud-only answer.
//!
//! The client's sampling parameters go with the sketch request and with every expansion; the
//! sketch sees the client's instructions and earlier turns ([`AnswerRequest::context`]), the
//! expansions a shorter cut of them.

use std::sync::Arc;
use std::time::Instant;

use pice_wire::openai_client::ChatOptions;
use pice_wire::openai_wire::ChatMessage;
use pice_wire::prompt::{self, ClientContext};
use tokio::sync::mpsc::unbounded_channel;
use tokio::task::JoinSet;
use tracing::debug;

use super::answer::{Answer, AnswerRequest, PiceInfo};
use super::cloud::{Collected, collect};
use super::error::ApiError;
use super::estimates::Stopwatch;
use super::fallback;
use super::merge;
use super::mode::Reason;
use super::point::{Expansions, FallbackReason};
use super::state::{Gateway, per_point_budget, positive};
use super::{request, sketch};
use pice_api::RoutingMode;

/// The cloud's decode slowdown (current over best time per token) beyond which sketches ask
/// for half the words per point, to spare a saturated cloud.
const SHRINK_SLOWDOWN: f64 = 2.0;
/// Fewest words per point a shrunk sketch asks for.
const MIN_WORDS_PER_POINT: u32 = 4;

/// Characters of the client's context each expansion prompt carries at most (about 500
/// tokens, repeated per point); the newest turns are kept.
const EXPANSION_CONTEXT_CHARS: usize = 2_000;

/// What the sketch gave.
pub enum Sketched {
    /// Points, being expanded.
    Points(Answer),
    /// No usable point: the cloud answers alone, summed up by this `pice`.
    Empty(PiceInfo),
}

/// Sketches, then starts expanding every point; fails only when the cloud cannot sketch.
pub async fn answer(
    gateway: &Arc<Gateway>,
    request: &AnswerRequest,
    mut pice: PiceInfo,
) -> Result<Sketched, ApiError> {
    let max_points = positive(gateway.config.routing.sketch.max_points);
    let sketch = write_sketch(gateway, request, max_points).await?;
    pice.cloud_tokens = sketch.usage.completion_tokens;
    pice.cloud_prompt_tokens = sketch.usage.prompt_tokens;
    let points = sketch::parse(&sketch.text, max_points as usize);
    gateway.metrics.sketch_points.observe(points.len() as f64);
    gateway.estimates().points.observe(points.len() as f64);
    if points.is_empty() {
        debug!(sketch = %sketch.text, "the sketch has no usable point; answering cloud-only");
        gateway.metrics.fallbacks.with_label_values(&[FallbackReason::EmptySketch.as_str()]).inc();
        let pice = PiceInfo {
            mode: RoutingMode::Cloud.as_str(),
            reason: Reason::EmptySketch.as_str(),
            fallbacks: 1,
            ..pice
        };
        return Ok(Sketched::Empty(pice));
    }
    let events = expand(gateway, request, points, pice);
    Ok(Sketched::Points(Answer { mode: RoutingMode::Progressive, events }))
}

/// Asks the cloud for the sketch and reads it whole.
async fn write_sketch(
    gateway: &Gateway,
    request: &AnswerRequest,
    max_points: u32,
) -> Result<Collected, ApiError> {
    let words = words_per_point(gateway);
    let messages = prompt::sketch_messages(&request.question, request.context(), max_points, words);
    let options = ChatOptions {
        max_tokens: Some(max_points * (2 * words + 4)),
        seed: request.seed,
        want_logprobs: false,
        sampling: request.sampling.clone(),
        user: request.user.clone(),
    };
    let started = Instant::now();
    let watch = Stopwatch::start();
    let stream = gateway.cloud.chat(messages, options).await.map_err(|e| ApiError::from_cloud(&e))?;
    let sketch = collect(stream, watch).await.map_err(|e| ApiError::from_cloud(&e))?;
    gateway.metrics.sketch_duration.observe(started.elapsed().as_secs_f64());
    let tokens = sketch.usage.completion_tokens;
    gateway.metrics.cloud_tokens.with_label_values(&["sketch"]).inc_by(u64::from(tokens));
    let mut estimates = gateway.estimates();
    estimates.observe(&sketch.timing);
    estimates.sketch_tokens.observe(f64::from(tokens));
    Ok(sketch)
}

/// The pool's words per point, halved while the cloud decodes much slower than at its best.
fn words_per_point(gateway: &Gateway) -> u32 {
    let configured = positive(gateway.config.routing.sketch.words_per_point);
    let words = if gateway.estimates().slowdown() >= SHRINK_SLOWDOWN {
        (configured / 2).max(MIN_WORDS_PER_POINT).min(configured)
    } else {
        configured
    };
    gateway.metrics.sketch_words_per_point.set(i64::from(words));
    words
}

/// Plans the points, starts one fallback chain per point and merges their text in order.
fn expand(
    gateway: &Arc<Gateway>,
    request: &AnswerRequest,
    points: Vec<String>,
    pice: PiceInfo,
) -> futures::stream::BoxStream<'static, super::answer::AnswerEvent> {
    let max_tokens_per_point = gateway.config.routing.expansion.max_tokens_per_point;
    let budget = per_point_budget(request.max_tokens, points.len(), max_tokens_per_point);
    let words: Vec<usize> = points.iter().map(|point| sketch::words(point)).collect();
    let (replicas, plan) = gateway.plan(&gateway.point_tokens(&words, budget));
    let assignments = plan.map(|plan| plan.assignments).unwrap_or_else(|| vec![Vec::new(); points.len()]);
    let expansions = Arc::new(Expansions {
        gateway: Arc::clone(gateway),
        request_id: format!("pice-{}", gateway.next_id()),
        question: request.question.clone(),
        context: expansion_context(request),
        sketch: points,
        max_tokens: budget,
        seed: request.seed.unwrap_or_else(rand::random),
        sampling: request.sampling.clone(),
    });
    let mut tasks = JoinSet::new();
    let mut channels = Vec::with_capacity(assignments.len());
    for (index, assigned) in assignments.into_iter().enumerate() {
        let (sender, receiver) = unbounded_channel();
        let assigned = assigned.into_iter().map(|replica| Arc::clone(&replicas[replica])).collect();
        tasks.spawn(fallback::run(Arc::clone(&expansions), index, assigned, sender));
        channels.push(receiver);
    }
    merge::ordered(channels, tasks, pice)
}

/// The client's instructions and newest earlier turns, as expansion prompts carry them.
fn expansion_context(request: &AnswerRequest) -> String {
    let turns: Vec<&ChatMessage> = request.earlier.iter().collect();
    let earlier = request::newest_within(&turns, EXPANSION_CONTEXT_CHARS);
    ClientContext { earlier: &earlier, ..request.context() }.as_text()
}
