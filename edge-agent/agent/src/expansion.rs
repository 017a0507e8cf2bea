//! One expansion from admission to its last chunk: wait for a slot, generate, stream, and stop
//! when the deadline passes or the caller goes away.
//!
//! Cancellation needs no code path of its own: when the caller drops its stream, tonic drops
//! this one, which drops the backend's generation stream (stopping the model) and the slot.
//! The [`Outcome`] guard notices that nothing settled the expansion and counts it as cancelled.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::time::{Instant, timeout_at};
use tonic::Status;
use tracing::{debug, warn};

use super::admission::{Queued, Running};
use super::metrics::AgentMetrics;
use super::rate::TokenRate;
use pice_wire::generation::{
    BackendError, ExpansionRequest, GenerationEvent, GenerationStream, ModelBackend, Usage,
};
use pice_wire::proto::{ExpandChunk, ExpandDone};

/// The stream type of the `Expand` RPC.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ExpandChunk, Status>> + Send>>;

/// What every expansion shares.
pub struct ExpansionContext {
    pub backend: Arc<dyn ModelBackend>,
    pub metrics: AgentMetrics,
    pub rate: Arc<TokenRate>,
}

impl ExpansionContext {
    fn count_tokens(&self, tokens: u32) {
        self.metrics.tokens.inc_by(u64::from(tokens));
        self.rate.add(u64::from(tokens));
    }
}

/// An admitted expansion, ready to run.
pub struct Expansion {
    pub request_id: String,
    pub request: ExpansionRequest,
    pub queued: Queued,
    pub received: Instant,
    pub deadline: Instant,
}

/// Runs `expansion` as the chunk stream of an `Expand` response.
pub fn run(context: Arc<ExpansionContext>, expansion: Expansion) -> ChunkStream {
    let Expansion { request_id, request, queued, received, deadline } = expansion;
    Box::pin(async_stream::stream! {
        let mut outcome = Outcome::new(context.metrics.clone(), request_id);
        let (_slot, mut generation) = match start(&context, queued, request, deadline, &mut outcome).await {
            Ok(started) => started,
            Err(status) => {
                yield Err(status);
                return;
            }
        };
        let mut streamed = 0u32;
        loop {
            let event = match timeout_at(deadline, generation.next()).await {
                Err(_) => Err(outcome.deadline_exceeded("generating")),
                Ok(None) => {
                    let error = BackendError::Stream("generation ended without finishing".to_owned());
                    Err(outcome.backend_failed(&error))
                }
                Ok(Some(Err(error))) => Err(outcome.backend_failed(&error)),
                Ok(Some(Ok(event))) => Ok(event),
            };
            match event {
                Err(status) => {
                    yield Err(status);
                    return;
                }
                Ok(GenerationEvent::Text(text)) => {
                    streamed = streamed.saturating_add(1);
                    context.count_tokens(1);
                    yield Ok(ExpandChunk { text, done: None });
                }
                Ok(GenerationEvent::Finished(usage)) => {
                    context.count_tokens(usage.completion_tokens.saturating_sub(streamed));
                    context.metrics.prompt_tokens.inc_by(u64::from(usage.prompt_tokens));
                    outcome.finished(received);
                    yield Ok(ExpandChunk { text: String::new(), done: Some(done(usage)) });
                    return;
                }
            }
        }
    })
}

/// Waits for a slot and starts the backend, both within the deadline.
async fn start(
    context: &ExpansionContext,
    queued: Queued,
    request: ExpansionRequest,
    deadline: Instant,
    outcome: &mut Outcome,
) -> Result<(Running, GenerationStream), Status> {
    let slot = timeout_at(deadline, queued.start())
        .await
        .map_err(|_| outcome.deadline_exceeded("waiting for a slot"))?;
    let generation = timeout_at(deadline, context.backend.generate(request))
        .await
        .map_err(|_| outcome.deadline_exceeded("starting generation"))?
        .map_err(|error| outcome.backend_failed(&error))?;
    Ok((slot, generation))
}

fn done(usage: Usage) -> ExpandDone {
    ExpandDone {
        finish_reason: usage.finish_reason.as_str().to_owned(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        mean_logprob: usage.mean_logprob,
    }
}

/// How a backend failure reaches the gateway: overload and outages are worth retrying on
/// another replica, anything else is an internal error.
pub fn status_for(error: &BackendError) -> Status {
    match error {
        _ if error.is_overload() => Status::resource_exhausted(error.to_string()),
        BackendError::Unreachable { .. } | BackendError::Stream(_) => Status::unavailable(error.to_string()),
        BackendError::Status { status, .. } if *status >= 500 => Status::unavailable(error.to_string()),
        _ => Status::internal(error.to_string()),
    }
}

/// Counts how an expansion ended; one left unsettled when dropped was cancelled by its caller.
struct Outcome {
    metrics: AgentMetrics,
    request_id: String,
    settled: bool,
}

impl Outcome {
    fn new(metrics: AgentMetrics, request_id: String) -> Self {
        Self { metrics, request_id, settled: false }
    }

    fn deadline_exceeded(&mut self, stage: &str) -> Status {
        self.settled = true;
        self.metrics.deadline_exceeded.inc();
        debug!(request_id = %self.request_id, stage, "expansion deadline exceeded");
        Status::deadline_exceeded(format!("the deadline passed while {stage}"))
    }

    fn backend_failed(&mut self, error: &BackendError) -> Status {
        self.settled = true;
        self.metrics.backend_errors.inc();
        warn!(request_id = %self.request_id, kind = error.label(), %error, "expansion failed");
        status_for(error)
    }

    fn finished(&mut self, received: Instant) {
        self.settled = true;
        self.metrics.expansion_seconds.observe(received.elapsed().as_secs_f64());
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.settled {
            self.metrics.cancelled.inc();
            debug!(request_id = %self.request_id, "caller cancelled the expansion; generation stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_failures_map_to_retryable_or_internal_codes() {
        let status = |status| BackendError::Status { status, body: String::new() };
        assert_eq!(status_for(&status(429)).code(), tonic::Code::ResourceExhausted);
        assert_eq!(status_for(&status(503)).code(), tonic::Code::Unavailable);
        assert_eq!(status_for(&status(400)).code(), tonic::Code::Internal);
        assert_eq!(status_for(&BackendError::Stream("x".into())).code(), tonic::Code::Unavailable);
        assert_eq!(status_for(&BackendError::Protocol("x".into())).code(), tonic::Code::Internal);
    }
}
