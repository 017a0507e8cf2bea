//! Progressive answers: the cloud LLM writes a sketch; each point is sent to the edge as soon
//! as its line is complete (the sketch and the expansions overlap), expanded through its
//! fallback chain, and the merger streams the points back in order. A sketch whose text holds
//! no usable point becomes a cloud-only answer: nothing was sent to the client before its
//! first point, so nothing is lost or said twice. A model that answers directly instead of
//! sketching (the prompt allows it when the question does not split into points) is seen from
//! its first lines, and its answer streams on as cloud-only, with no second cloud call.
//!
//! The client's sampling parameters go with the sketch request and with every expansion; the
//! sketch sees the client's instructions and earlier turns ([`AnswerRequest::context`]), the
//! expansions a shorter cut of them. An expansion prompt shows the outline up to its point,
//! so each point's prompt begins with the whole prompt of the point before it but for its
//! last line: a prefix the agents' caches keep.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use pice_wire::generation::{BackendError, GenerationEvent, GenerationStream, Usage};
use pice_wire::openai_client::ChatOptions;
use pice_wire::openai_wire::ChatMessage;
use pice_wire::prompt::{self, ClientContext};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tracing::debug;

use super::answer::{Answer, AnswerEnd, AnswerEvent, AnswerRequest, PiceInfo};
use super::error::ApiError;
use super::estimates::Stopwatch;
use super::fallback;
use super::merge::{self, Dispatched, SketchEnd};
use super::mode::Reason;
use super::point::{Expansions, FallbackReason, PointJob};
use super::request;
use super::sketch::{self, Outline};
use super::state::{Gateway, per_point_budget, positive};
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
    /// Points, being expanded while the rest of the sketch is written.
    Points(Answer),
    /// The cloud answered directly instead of sketching: that answer, streamed as cloud-only.
    Declined(Answer),
    /// No usable point: the cloud answers alone, summed up by this `pice`.
    Empty(PiceInfo),
}

/// Asks for the sketch and reads it up to its first point, then dispatches that point and
/// every later one as it completes; fails only when the cloud cannot sketch.
pub async fn answer(
    gateway: &Arc<Gateway>,
    request: &AnswerRequest,
    pice: PiceInfo,
) -> Result<Sketched, ApiError> {
    let mut sketch = SketchReader::start(gateway, request).await?;
    let first = match sketch.next().await {
        Read::Point(point) => point,
        Read::End(usage) => {
            debug!(sketch = %sketch.text, "the sketch has no usable point; answering cloud-only");
            gateway.metrics.fallbacks.with_label_values(&[FallbackReason::EmptySketch.as_str()]).inc();
            let pice = PiceInfo {
                mode: RoutingMode::Cloud.as_str(),
                reason: Reason::EmptySketch.as_str(),
                fallbacks: 1,
                cloud_tokens: usage.completion_tokens,
                cloud_prompt_tokens: usage.prompt_tokens,
                ..pice
            };
            return Ok(Sketched::Empty(pice));
        }
        Read::Declined => {
            gateway.metrics.declined_sketches.inc();
            let pice =
                PiceInfo { mode: RoutingMode::Cloud.as_str(), reason: Reason::Declined.as_str(), ..pice };
            return Ok(Sketched::Declined(Answer {
                mode: RoutingMode::Cloud,
                events: sketch.direct_answer(pice),
            }));
        }
        Read::Failed(error) => return Err(ApiError::from_cloud(&error)),
    };
    let expansions = Arc::new(Expansions {
        gateway: Arc::clone(gateway),
        request_id: format!("pice-{}", gateway.next_id()),
        question: request.question.clone(),
        context: expansion_context(request),
        seed: request.seed.unwrap_or_else(rand::random),
        sampling: request.sampling.clone(),
    });
    let budgets = Budgets::new(gateway, request.max_tokens);
    let (sender, receiver) = unbounded_channel();
    let mut dispatcher = JoinSet::new();
    dispatcher.spawn(dispatch(expansions, sketch, first, budgets, sender));
    let events = merge::ordered(receiver, dispatcher, pice);
    Ok(Sketched::Points(Answer { mode: RoutingMode::Progressive, events }))
}

/// Sends each point to the edge as the sketch completes it, tells the merger, then keeps the
/// point tasks alive until they end (aborting this task aborts them).
async fn dispatch(
    expansions: Arc<Expansions>,
    mut sketch: SketchReader,
    first: String,
    mut budgets: Budgets,
    merger: UnboundedSender<Dispatched>,
) {
    let mut points = JoinSet::new();
    let mut outline: Vec<String> = Vec::new();
    let mut holders: Vec<String> = Vec::new();
    let mut read = Read::Point(first);
    let end = loop {
        match read {
            Read::Point(line) => {
                outline.push(line);
                let point = PointJob {
                    index: outline.len() - 1,
                    outline: outline.clone(),
                    max_tokens: budgets.next(),
                };
                let assigned = place(&expansions, &point, &mut holders);
                let (sender, receiver) = unbounded_channel();
                points.spawn(fallback::run(Arc::clone(&expansions), point, assigned, sender));
                if merger.send(Dispatched::Point(receiver)).is_err() {
                    return;
                }
            }
            Read::End(usage) => {
                break SketchEnd {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    cut: false,
                };
            }
            // A sketch declines only before its first point; were it to, no more points come.
            read @ (Read::Declined | Read::Failed(_)) => {
                if let Read::Failed(error) = read {
                    debug!(request_id = %expansions.request_id, %error, "the sketch broke off after {} points", outline.len());
                }
                let reason = FallbackReason::SketchCut.as_str();
                expansions.gateway.metrics.fallbacks.with_label_values(&[reason]).inc();
                break SketchEnd { cut: true, ..SketchEnd::default() };
            }
        }
        read = sketch.next().await;
    };
    let _merger_gone = merger.send(Dispatched::SketchEnd(end));
    drop(merger);
    while points.join_next().await.is_some() {}
}

/// Plans one point over the usable replicas, with the ones already holding this answer's
/// prompt prefix (`holders`) as fast to start as the shared share of the prompt allows, and
/// counts whether reuse or parallelism won.
fn place(
    expansions: &Expansions,
    point: &PointJob,
    holders: &mut Vec<String>,
) -> Vec<Arc<super::replicas::Replica>> {
    let gateway = &expansions.gateway;
    let tokens = gateway.point_tokens(&[sketch::words(point.line())], point.max_tokens);
    let shared = shared_share(&prompt::expansion_messages(&expansions.request(point)), point);
    let (replicas, plan) = gateway.plan_with_prefix(&tokens, holders, shared);
    let Some(plan) = plan else { return Vec::new() };
    let assigned: Vec<_> = plan.assignments.into_iter().next().unwrap_or_default();
    let choice = match assigned.first() {
        _ if holders.is_empty() => "first",
        Some(&chosen) if holders.contains(&replicas[chosen].addr) => "reuse",
        _ => "spread",
    };
    gateway.metrics.point_placements.with_label_values(&[choice]).inc();
    for &chosen in &assigned {
        if !holders.contains(&replicas[chosen].addr) {
            holders.push(replicas[chosen].addr.clone());
        }
    }
    assigned.into_iter().map(|replica| Arc::clone(&replicas[replica])).collect()
}

/// The share of a point's prompt that an agent holding the answer's earlier points has
/// cached: everything but the point's own outline line and instruction.
fn shared_share(messages: &[ChatMessage], point: &PointJob) -> f64 {
    let total: usize = messages.iter().map(|m| m.text().len()).sum();
    let own = 2 * point.line().len() + prompt::EXPAND_MARKER.len() + 8;
    if total == 0 { 0.0 } else { (1.0 - own as f64 / total as f64).clamp(0.0, 1.0) }
}

/// The points' token budgets: the answer's budget shared out over the points the sketch is
/// expected to have (the measured mean), each capped by the pool's per-point budget. Points
/// beyond the expected number share what is left, at least 16 tokens each.
struct Budgets {
    remaining: u32,
    expected_points: f64,
    per_point: i32,
    given: u32,
}

impl Budgets {
    fn new(gateway: &Gateway, max_tokens: u32) -> Self {
        let expected_points = gateway.estimates().points.get().ceil().max(1.0);
        let per_point = gateway.config.routing.expansion.max_tokens_per_point;
        Self { remaining: max_tokens, expected_points, per_point, given: 0 }
    }

    fn next(&mut self) -> u32 {
        let left = (self.expected_points - f64::from(self.given)).max(1.0) as usize;
        let budget = per_point_budget(self.remaining, left, self.per_point);
        self.remaining = self.remaining.saturating_sub(budget);
        self.given += 1;
        budget
    }
}

/// The sketch as it streams, read point by point.
struct SketchReader {
    gateway: Arc<Gateway>,
    stream: GenerationStream,
    outline: Outline,
    ready: VecDeque<String>,
    ended: Option<Usage>,
    watch: Stopwatch,
    started: Instant,
    /// The text so far, for the log of a sketch without points.
    text: String,
}

/// What reading the sketch gave next.
enum Read {
    Point(String),
    /// The sketch ended (its usage); no more points.
    End(Usage),
    /// The model is answering directly (only ever before the first point).
    Declined,
    Failed(BackendError),
}

impl SketchReader {
    /// Asks the cloud for the sketch.
    async fn start(gateway: &Arc<Gateway>, request: &AnswerRequest) -> Result<Self, ApiError> {
        let max_points = positive(gateway.config.routing.sketch.max_points);
        let words = words_per_point(gateway);
        let messages = prompt::sketch_messages(&request.question, request.context(), max_points, words);
        let options = ChatOptions {
            // Room for the outline, or for the whole answer should the model answer directly.
            max_tokens: Some((max_points * (2 * words + 4)).max(request.max_tokens)),
            seed: request.seed,
            want_logprobs: false,
            sampling: request.sampling.clone(),
            user: request.user.clone(),
        };
        let started = Instant::now();
        let watch = Stopwatch::start();
        let stream = gateway.cloud.chat(messages, options).await.map_err(|e| ApiError::from_cloud(&e))?;
        Ok(Self {
            gateway: Arc::clone(gateway),
            stream,
            outline: Outline::new(max_points as usize),
            ready: VecDeque::new(),
            ended: None,
            watch,
            started,
            text: String::new(),
        })
    }

    /// The next complete point, or how the sketch ended.
    async fn next(&mut self) -> Read {
        loop {
            if let Some(point) = self.ready.pop_front() {
                return Read::Point(point);
            }
            if self.outline.declined() {
                return Read::Declined;
            }
            if let Some(usage) = self.ended {
                return Read::End(usage);
            }
            match self.stream.next().await {
                Some(Ok(GenerationEvent::Text(delta))) => {
                    self.watch.text();
                    self.text.push_str(&delta);
                    self.ready.extend(self.outline.push(&delta));
                }
                Some(Ok(GenerationEvent::Finished(usage))) => {
                    self.ready.extend(self.outline.finish());
                    if !self.outline.declined() {
                        self.finished(&usage);
                    }
                    self.ended = Some(usage);
                }
                Some(Err(error)) => return Read::Failed(error),
                None => {
                    return Read::Failed(BackendError::Stream(
                        "the sketch stream ended without finishing".into(),
                    ));
                }
            }
        }
    }

    /// The direct answer the model began instead of a sketch: the text read so far, then the
    /// rest of the stream, as a cloud-only answer summed up by `pice`.
    fn direct_answer(mut self, mut pice: PiceInfo) -> futures::stream::BoxStream<'static, AnswerEvent> {
        async_stream::stream! {
            yield AnswerEvent::Text(std::mem::take(&mut self.text));
            let usage = match self.ended {
                Some(usage) => Ok(usage),
                None => loop {
                    match self.stream.next().await {
                        Some(Ok(GenerationEvent::Text(delta))) => yield AnswerEvent::Text(delta),
                        Some(Ok(GenerationEvent::Finished(usage))) => break Ok(usage),
                        Some(Err(error)) => break Err(error),
                        None => break Err(BackendError::Stream("the answer stream ended without finishing".into())),
                    }
                },
            };
            match usage {
                Ok(usage) => {
                    let tokens = usage.completion_tokens;
                    self.gateway.metrics.cloud_tokens.with_label_values(&["answer"]).inc_by(u64::from(tokens));
                    self.gateway.estimates().answer_tokens.observe(f64::from(tokens));
                    pice.cloud_tokens = tokens;
                    pice.cloud_prompt_tokens = usage.prompt_tokens;
                    yield AnswerEvent::End(AnswerEnd { finish_reason: usage.finish_reason.as_str(), pice });
                }
                Err(error) => yield AnswerEvent::Failed(ApiError::from_cloud(&error)),
            }
        }
        .boxed()
    }

    /// Records what the whole sketch took.
    fn finished(&self, usage: &Usage) {
        let metrics = &self.gateway.metrics;
        metrics.sketch_duration.observe(self.started.elapsed().as_secs_f64());
        let tokens = usage.completion_tokens;
        metrics.cloud_tokens.with_label_values(&["sketch"]).inc_by(u64::from(tokens));
        let points = self.outline.points().len() as f64;
        metrics.sketch_points.observe(points);
        let mut estimates = self.gateway.estimates();
        estimates.observe(&self.watch.finish(tokens));
        estimates.sketch_tokens.observe(f64::from(tokens));
        estimates.points.observe(points);
    }
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

/// The client's instructions and newest earlier turns, as expansion prompts carry them.
fn expansion_context(request: &AnswerRequest) -> String {
    let turns: Vec<&ChatMessage> = request.earlier.iter().collect();
    let earlier = request::newest_within(&turns, EXPANSION_CONTEXT_CHARS);
    ClientContext { earlier: &earlier, ..request.context() }.as_text()
}
