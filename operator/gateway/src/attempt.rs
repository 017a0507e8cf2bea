//! One try at expanding a point: on an edge replica over gRPC (`pice.edge.v1.Expand`) or on the
//! cloud LLM, read as generation events within the point's deadline.
//!
//! Errors are sorted into [`FallbackReason`]s: a full agent (`RESOURCE_EXHAUSTED`), a missed
//! deadline, or any other failure. A transport failure also takes the replica out of rotation
//! until its next good load report.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use pice_wire::generation::{ExpansionRequest, FinishReason, GenerationEvent, Usage};
use pice_wire::proto::{ExpandChunk, ExpandRequest};
use tokio::time::{Instant, timeout_at};
use tonic::Code;

use super::cloud::CloudClient;
use super::estimates::{Stopwatch, Timing};
use super::point::FallbackReason;
use super::replicas::Replica;

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptError {
    pub reason: FallbackReason,
    pub message: String,
}

impl AttemptError {
    fn new(reason: FallbackReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// Generation events of one attempt.
pub type AttemptStream = BoxStream<'static, Result<GenerationEvent, AttemptError>>;

/// Where an attempt runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Edge,
    Cloud,
}

impl Tier {
    fn deadline_reason(self) -> FallbackReason {
        match self {
            Self::Edge => FallbackReason::EdgeDeadline,
            Self::Cloud => FallbackReason::CloudDeadline,
        }
    }
}

/// A successful attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finished {
    pub usage: Usage,
    pub timing: Timing,
}

/// Starts expanding on `replica`; the replica counts the expansion as in flight until the
/// stream ends.
pub async fn start_edge(
    replica: &Arc<Replica>,
    message: ExpandRequest,
    deadline: Instant,
) -> Result<AttemptStream, AttemptError> {
    let in_flight = replica.begin();
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    let mut client = replica.client();
    let response = match timeout_at(deadline, client.expand(request)).await {
        Err(_) => {
            return Err(AttemptError::new(FallbackReason::EdgeDeadline, "no answer before the deadline"));
        }
        Ok(response) => response.map_err(|status| edge_error(replica, &status))?,
    };
    let replica = Arc::clone(replica);
    let events = response.into_inner().map(move |chunk| {
        let _held = &in_flight;
        chunk.map(chunk_event).map_err(|status| edge_error(&replica, &status))
    });
    Ok(events.filter_map(|event| async move { event.transpose() }).boxed())
}

/// Starts expanding on the cloud LLM with the edge's prompt.
pub async fn start_cloud(
    cloud: &CloudClient,
    request: ExpansionRequest,
    deadline: Instant,
) -> Result<AttemptStream, AttemptError> {
    let cloud_error =
        |e: pice_wire::generation::BackendError| AttemptError::new(FallbackReason::CloudError, e.to_string());
    let started = cloud.expander().generate(request).map(|result| result.map_err(cloud_error));
    let stream = timeout_at(deadline, started)
        .await
        .map_err(|_| AttemptError::new(FallbackReason::CloudDeadline, "no answer before the deadline"))??;
    Ok(stream.map(move |event| event.map_err(cloud_error)).boxed())
}

/// Reads an attempt to its end, giving each text delta to `sink`; an attempt that ends
/// without text or misses `deadline` failed.
pub async fn drive(
    mut stream: AttemptStream,
    tier: Tier,
    deadline: Instant,
    mut watch: Stopwatch,
    mut sink: impl FnMut(&str),
) -> Result<Finished, AttemptError> {
    loop {
        let event = timeout_at(deadline, stream.next())
            .await
            .map_err(|_| AttemptError::new(tier.deadline_reason(), "the deadline passed while generating"))?;
        match event {
            None => return Err(AttemptError::new(failure(tier), "the stream ended without finishing")),
            Some(Err(error)) => return Err(error),
            Some(Ok(GenerationEvent::Text(text))) => {
                watch.text();
                sink(&text);
            }
            Some(Ok(GenerationEvent::Finished(_))) if !watch.has_text() => {
                return Err(AttemptError::new(failure(tier), "the expansion was empty"));
            }
            Some(Ok(GenerationEvent::Finished(usage))) => {
                return Ok(Finished { usage, timing: watch.finish(usage.completion_tokens) });
            }
        }
    }
}

fn failure(tier: Tier) -> FallbackReason {
    match tier {
        Tier::Edge => FallbackReason::EdgeError,
        Tier::Cloud => FallbackReason::CloudError,
    }
}

/// Reads one `ExpandChunk`: its text, or the usage of the last one.
fn chunk_event(chunk: ExpandChunk) -> Option<GenerationEvent> {
    if let Some(done) = chunk.done {
        return Some(GenerationEvent::Finished(Usage {
            finish_reason: FinishReason::from_openai(&done.finish_reason),
            prompt_tokens: done.prompt_tokens,
            completion_tokens: done.completion_tokens,
            mean_logprob: done.mean_logprob,
        }));
    }
    (!chunk.text.is_empty()).then_some(GenerationEvent::Text(chunk.text))
}

/// Sorts a gRPC failure; transport failures take the replica out of rotation.
fn edge_error(replica: &Replica, status: &tonic::Status) -> AttemptError {
    let reason = match status.code() {
        Code::ResourceExhausted => FallbackReason::EdgeFull,
        Code::DeadlineExceeded => FallbackReason::EdgeDeadline,
        Code::Unavailable | Code::Unknown | Code::Cancelled => {
            replica.mark_down();
            FallbackReason::EdgeError
        }
        _ => FallbackReason::EdgeError,
    };
    AttemptError::new(reason, format!("edge agent {}: {}", replica.addr, status.message()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use pice_wire::proto::ExpandDone;

    use super::*;

    fn usage(completion_tokens: u32) -> Usage {
        Usage {
            finish_reason: FinishReason::Stop,
            prompt_tokens: 9,
            completion_tokens,
            mean_logprob: Some(-0.5),
        }
    }

    fn stream(events: Vec<Result<GenerationEvent, AttemptError>>) -> AttemptStream {
        futures::stream::iter(events).boxed()
    }

    #[test]
    fn chunks_become_text_or_the_final_usage() {
        let text = ExpandChunk { text: "Bees".into(), done: None };
        assert_eq!(chunk_event(text), Some(GenerationEvent::Text("Bees".into())));
        assert_eq!(chunk_event(ExpandChunk::default()), None);
        let done = ExpandDone {
            finish_reason: "stop".into(),
            prompt_tokens: 9,
            completion_tokens: 2,
            mean_logprob: Some(-0.5),
        };
        let last = ExpandChunk { text: String::new(), done: Some(done) };
        assert_eq!(chunk_event(last), Some(GenerationEvent::Finished(usage(2))));
    }

    #[tokio::test]
    async fn drive_hands_text_to_the_sink_and_returns_the_usage() {
        let events = vec![
            Ok(GenerationEvent::Text("Bees".into())),
            Ok(GenerationEvent::Text(" fly".into())),
            Ok(GenerationEvent::Finished(usage(2))),
        ];
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let finished =
            drive(stream(events), Tier::Edge, deadline, Stopwatch::start(), |t| text.push_str(t)).await;
        assert_eq!(finished.unwrap().usage, usage(2));
        assert_eq!(text, "Bees fly");
    }

    #[tokio::test]
    async fn empty_cut_off_and_late_attempts_fail_with_their_reason() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let empty = stream(vec![Ok(GenerationEvent::Finished(usage(0)))]);
        let error = drive(empty, Tier::Cloud, deadline, Stopwatch::start(), |_| {}).await.unwrap_err();
        assert_eq!(error.reason, FallbackReason::CloudError);
        let cut = stream(vec![Ok(GenerationEvent::Text("a".into()))]);
        let error = drive(cut, Tier::Edge, deadline, Stopwatch::start(), |_| {}).await.unwrap_err();
        assert_eq!(error.reason, FallbackReason::EdgeError);
        let late = futures::stream::pending().boxed();
        let soon = Instant::now() + Duration::from_millis(20);
        let error = drive(late, Tier::Edge, soon, Stopwatch::start(), |_| {}).await.unwrap_err();
        assert_eq!(error.reason, FallbackReason::EdgeDeadline);
    }
}
