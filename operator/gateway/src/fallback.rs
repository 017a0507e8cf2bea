//! The fallback chain of one point (docs/design.md, steps 5 and 6): its assigned replica (or an
//! ensemble of them), then other replicas, then the cloud LLM, then the sketch line itself with
//! the answer marked degraded. A client never gets an error because an edge failed.
//!
//! A full replica (`RESOURCE_EXHAUSTED`) is skipped at once for the next-best one and does not
//! use up a retry; a failure or a missed deadline does (`fallback.edgeRetries` of them). Text
//! goes to the merger as it arrives; a retry after text was sent resumes it ([`Resume`]).

use std::sync::Arc;
use std::time::Instant;

use pice_wire::generation::Usage;
use tokio::sync::mpsc::UnboundedSender;
use tracing::debug;

use super::attempt::{self, AttemptError, Finished, Tier};
use super::ensemble::{self, Candidate};
use super::estimates::Stopwatch;
use super::point::{Expansions, FallbackReason, PointEvent, PointJob, PointOutcome, Source};
use super::replicas::Replica;
use super::resume::Resume;
use super::scheduler;

/// Runs the chain for `point`, starting with its `assigned` replicas.
pub async fn run(
    expansions: Arc<Expansions>,
    point: PointJob,
    assigned: Vec<Arc<Replica>>,
    out: UnboundedSender<PointEvent>,
) {
    let started = Instant::now();
    let outcome = PointOutcome {
        source: Source::Sketch,
        fallbacks: 0,
        edge_tokens: 0,
        cloud_tokens: 0,
        edge_prompt_tokens: 0,
        cloud_prompt_tokens: 0,
    };
    let mut chain = Chain { expansions, point, out, resume: Resume::default(), tried: Vec::new(), outcome };
    chain.run(assigned).await;
    let metrics = &chain.expansions.gateway.metrics;
    let source = chain.outcome.source.as_str();
    metrics.expansion_duration.with_label_values(&[source]).observe(started.elapsed().as_secs_f64());
    let _client_gone = chain.out.send(PointEvent::Done(chain.outcome));
}

/// One point's way through the chain.
struct Chain {
    expansions: Arc<Expansions>,
    point: PointJob,
    out: UnboundedSender<PointEvent>,
    resume: Resume,
    /// Addresses already tried for this point.
    tried: Vec<String>,
    outcome: PointOutcome,
}

impl Chain {
    async fn run(&mut self, assigned: Vec<Arc<Replica>>) {
        let routing = &self.expansions.gateway.config.routing;
        let (ensemble, to_cloud) = (routing.ensemble.candidates > 1, routing.fallback.to_cloud);
        let written = if ensemble && !assigned.is_empty() {
            self.ensemble(&assigned).await || self.on_edge(Vec::new()).await
        } else {
            self.on_edge(assigned).await
        };
        if !(written || to_cloud && self.on_cloud().await) {
            let line = self.point.line().to_owned();
            self.resume.restart();
            forward(&self.out, &mut self.resume, &line);
            self.outcome.source = Source::Sketch;
        }
    }

    /// Tries replicas until one writes the point; false once retries or replicas run out.
    async fn on_edge(&mut self, mut preferred: Vec<Arc<Replica>>) -> bool {
        let retries = self.expansions.gateway.config.routing.fallback.edge_retries.max(0);
        let mut failures = 0;
        while failures <= retries {
            let Some(replica) = self.next_replica(&mut preferred) else {
                if self.tried.is_empty() {
                    self.fail(&AttemptError {
                        reason: FallbackReason::NoEdge,
                        message: "no usable edge replica".into(),
                    });
                }
                return false;
            };
            match self.attempt_on(&replica).await {
                Ok(()) => return true,
                Err(error) => {
                    failures += i32::from(error.reason != FallbackReason::EdgeFull);
                    self.fail(&error);
                }
            }
        }
        false
    }

    /// The next replica to try: an assigned one, else the untried one that finishes first.
    fn next_replica(&mut self, preferred: &mut Vec<Arc<Replica>>) -> Option<Arc<Replica>> {
        let tried = &self.tried;
        preferred.retain(|replica| !tried.contains(&replica.addr) && replica.usable());
        let replica = if preferred.is_empty() {
            let gateway = &self.expansions.gateway;
            let usable: Vec<_> =
                gateway.replicas.usable().into_iter().filter(|r| !tried.contains(&r.addr)).collect();
            let views: Vec<_> = usable.iter().map(|replica| replica.view()).collect();
            let words = super::sketch::words(self.point.line());
            let tokens = gateway.point_tokens(&[words], self.point.max_tokens);
            let best = *scheduler::rank(&views, tokens[0]).first()?;
            Arc::clone(&usable[best])
        } else {
            preferred.remove(0)
        };
        self.tried.push(replica.addr.clone());
        Some(replica)
    }

    async fn attempt_on(&mut self, replica: &Arc<Replica>) -> Result<(), AttemptError> {
        let deadline = self.expansions.deadline();
        let watch = Stopwatch::start();
        let message = self.expansions.message(&self.point, 0, false);
        let stream = attempt::start_edge(replica, message, deadline).await?;
        self.resume.restart();
        let (out, resume) = (&self.out, &mut self.resume);
        let finished =
            attempt::drive(stream, Tier::Edge, deadline, watch, |text| forward(out, resume, text)).await?;
        replica.observe(&finished.timing);
        self.kept(Tier::Edge, &finished);
        Ok(())
    }

    /// Expands on the cloud LLM with the edge's prompt.
    async fn on_cloud(&mut self) -> bool {
        let deadline = self.expansions.deadline();
        let watch = Stopwatch::start();
        let request = self.expansions.request(&self.point);
        let gateway = Arc::clone(&self.expansions.gateway);
        let result = match attempt::start_cloud(&gateway.cloud, request, deadline).await {
            Ok(stream) => {
                self.resume.restart();
                let (out, resume) = (&self.out, &mut self.resume);
                attempt::drive(stream, Tier::Cloud, deadline, watch, |text| forward(out, resume, text)).await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(finished) => {
                gateway.estimates().observe(&finished.timing);
                self.kept(Tier::Cloud, &finished);
                true
            }
            Err(error) => {
                self.fail(&error);
                false
            }
        }
    }

    /// Expands the point on each assigned replica at once and keeps the best candidate.
    async fn ensemble(&mut self, assigned: &[Arc<Replica>]) -> bool {
        let selector = self.expansions.gateway.config.routing.ensemble.selector;
        let want_logprobs = selector == pice_api::EnsembleSelector::Logprob;
        let attempts = assigned.iter().enumerate().map(|(number, replica)| {
            candidate(Arc::clone(&self.expansions), &self.point, Arc::clone(replica), number, want_logprobs)
        });
        let results = futures::future::join_all(attempts).await;
        self.tried.extend(assigned.iter().map(|replica| replica.addr.clone()));
        let mut candidates: Vec<(Candidate, Finished)> = Vec::new();
        for result in results {
            match result {
                Ok(written) => {
                    self.count_edge_tokens(&written.1.usage);
                    candidates.push(written);
                }
                Err(error) => self.fail(&error),
            }
        }
        let texts: Vec<Candidate> = candidates.iter().map(|(candidate, _)| candidate.clone()).collect();
        let Some(best) = ensemble::select(&texts, selector) else {
            return false;
        };
        forward(&self.out, &mut self.resume, &candidates[best].0.text);
        self.outcome.source = Source::Edge;
        true
    }

    /// Records the attempt whose text was kept.
    fn kept(&mut self, tier: Tier, finished: &Finished) {
        let tokens = finished.usage.completion_tokens;
        match tier {
            Tier::Edge => {
                self.outcome.source = Source::Edge;
                self.count_edge_tokens(&finished.usage);
            }
            Tier::Cloud => {
                self.outcome.source = Source::Cloud;
                self.outcome.cloud_tokens = self.outcome.cloud_tokens.saturating_add(tokens);
                self.outcome.cloud_prompt_tokens =
                    self.outcome.cloud_prompt_tokens.saturating_add(finished.usage.prompt_tokens);
                self.expansions
                    .gateway
                    .metrics
                    .cloud_tokens
                    .with_label_values(&["expansion"])
                    .inc_by(u64::from(tokens));
            }
        }
    }

    fn count_edge_tokens(&mut self, usage: &Usage) {
        let gateway = &self.expansions.gateway;
        let tokens = usage.completion_tokens;
        self.outcome.edge_tokens = self.outcome.edge_tokens.saturating_add(tokens);
        self.outcome.edge_prompt_tokens = self.outcome.edge_prompt_tokens.saturating_add(usage.prompt_tokens);
        gateway.metrics.edge_tokens.inc_by(u64::from(tokens));
        let words = super::sketch::words(self.point.line()) as f64;
        gateway.estimates().expansion_extra_tokens.observe(f64::from(tokens) - words);
    }

    fn fail(&mut self, error: &AttemptError) {
        self.outcome.fallbacks += 1;
        self.expansions.gateway.metrics.fallbacks.with_label_values(&[error.reason.as_str()]).inc();
        debug!(request_id = %self.expansions.request_id, point = self.point.index, reason = error.reason.as_str(),
               error = %error.message, "point falls back");
    }
}

/// One ensemble candidate, written in full before selection.
async fn candidate(
    expansions: Arc<Expansions>,
    point: &PointJob,
    replica: Arc<Replica>,
    number: usize,
    want_logprobs: bool,
) -> Result<(Candidate, Finished), AttemptError> {
    let deadline = expansions.deadline();
    let watch = Stopwatch::start();
    let message = expansions.message(point, number, want_logprobs);
    let stream = attempt::start_edge(&replica, message, deadline).await?;
    let mut text = String::new();
    let finished = attempt::drive(stream, Tier::Edge, deadline, watch, |delta| text.push_str(delta)).await?;
    replica.observe(&finished.timing);
    Ok((Candidate { text, mean_logprob: finished.usage.mean_logprob }, finished))
}

/// Sends what `resume` lets through to the merger (a client that left is not an error here:
/// the merger's drop aborts this point's task).
fn forward(out: &UnboundedSender<PointEvent>, resume: &mut Resume, text: &str) {
    if let Some(text) = resume.accept(text) {
        let _client_gone = out.send(PointEvent::Text(text));
    }
}
