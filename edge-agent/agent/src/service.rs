//! The `pice.edge.v1.EdgeAgent` gRPC service: validates and admits expansions, reports load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::admission::Admission;
use super::deadline;
use super::expansion::{self, ChunkStream, Expansion, ExpansionContext};
use pice_wire::generation::{ExpansionRequest, Sampling};
use pice_wire::proto::edge_agent_server::EdgeAgent;
use pice_wire::proto::{ExpandRequest, LoadReport, LoadRequest};

/// What a request may leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Token budget when `max_tokens` is 0.
    pub max_tokens: u32,
    /// Longest an expansion may take when neither the caller nor `deadline_ms` says.
    pub deadline: Duration,
}

/// The service; cheap to share, all state behind `Arc`s.
pub struct EdgeAgentService {
    context: Arc<ExpansionContext>,
    admission: Arc<Admission>,
    ready: Arc<AtomicBool>,
    defaults: Defaults,
}

impl EdgeAgentService {
    pub fn new(
        context: Arc<ExpansionContext>,
        admission: Arc<Admission>,
        ready: Arc<AtomicBool>,
        defaults: Defaults,
    ) -> Self {
        Self { context, admission, ready, defaults }
    }

    fn admit(&self, request: Request<ExpandRequest>) -> Result<Expansion, Status> {
        let received = Instant::now();
        let deadline = deadline::effective(
            received,
            request.metadata(),
            request.get_ref().deadline_ms,
            self.defaults.deadline,
        );
        let message = request.into_inner();
        let expansion_request = validate(&message, self.defaults.max_tokens)?;
        let Some(queued) = self.admission.try_admit() else {
            self.context.metrics.rejected.inc();
            let occupancy = self.admission.occupancy();
            return Err(Status::resource_exhausted(format!(
                "edge agent is full: {} running in {} slots, {} waiting",
                occupancy.running, occupancy.slots, occupancy.waiting
            )));
        };
        Ok(Expansion {
            request_id: message.request_id,
            request: expansion_request,
            queued,
            received,
            deadline,
        })
    }
}

/// Checks an `ExpandRequest` and fills in defaults.
pub fn validate(message: &ExpandRequest, default_max_tokens: u32) -> Result<ExpansionRequest, Status> {
    if message.question.trim().is_empty() {
        return Err(Status::invalid_argument("question must not be empty"));
    }
    let point_index = usize::try_from(message.point_index).unwrap_or(usize::MAX);
    if point_index >= message.sketch.len() {
        return Err(Status::invalid_argument(format!(
            "point_index {} is outside the sketch of {} points",
            message.point_index,
            message.sketch.len()
        )));
    }
    if message.sketch[point_index].trim().is_empty() {
        return Err(Status::invalid_argument("the point to expand is empty"));
    }
    Ok(ExpansionRequest {
        question: message.question.clone(),
        context: message.context.clone(),
        sketch: message.sketch.clone(),
        point_index,
        max_tokens: if message.max_tokens == 0 { default_max_tokens } else { message.max_tokens },
        want_logprobs: message.want_logprobs,
        seed: message.seed,
        sampling: Sampling {
            temperature: message.temperature,
            top_p: message.top_p,
            presence_penalty: message.presence_penalty,
            frequency_penalty: message.frequency_penalty,
            stop: message.stop.clone(),
        },
        prefix_id: message.prefix_id.clone(),
    })
}

#[tonic::async_trait]
impl EdgeAgent for EdgeAgentService {
    type ExpandStream = ChunkStream;

    async fn expand(&self, request: Request<ExpandRequest>) -> Result<Response<ChunkStream>, Status> {
        let expansion = self.admit(request)?;
        Ok(Response::new(expansion::run(Arc::clone(&self.context), expansion)))
    }

    async fn load(&self, _request: Request<LoadRequest>) -> Result<Response<LoadReport>, Status> {
        let occupancy = self.admission.occupancy();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(LoadReport {
            waiting: count(occupancy.waiting),
            running: count(occupancy.running),
            slots: count(occupancy.slots),
            recent_tokens_per_second: self.context.rate.per_second(),
            model: self.context.backend.model().to_owned(),
            ready: self.ready.load(Ordering::Acquire),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn message() -> ExpandRequest {
        ExpandRequest {
            question: "Why?".into(),
            sketch: vec!["One".into(), "Two".into()],
            point_index: 1,
            ..ExpandRequest::default()
        }
    }

    #[test]
    fn a_valid_request_gets_the_default_budget_when_it_sets_none() {
        let request = validate(&message(), 160).unwrap();
        assert_eq!((request.point_index, request.max_tokens), (1, 160));
        let request = validate(&ExpandRequest { max_tokens: 20, ..message() }, 160).unwrap();
        assert_eq!(request.max_tokens, 20);
    }

    #[test]
    fn bad_requests_are_invalid_arguments_that_say_why() {
        let cases = [
            (ExpandRequest { question: " ".into(), ..message() }, "question"),
            (ExpandRequest { point_index: 2, ..message() }, "outside the sketch of 2 points"),
            (ExpandRequest { sketch: vec![], point_index: 0, ..message() }, "outside the sketch of 0"),
            (ExpandRequest { sketch: vec!["".into()], point_index: 0, ..message() }, "empty"),
        ];
        for (request, reason) in cases {
            let status = validate(&request, 160).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains(reason), "{}", status.message());
        }
    }
}
