//! One request from question to answer: classify, decide the mode, run it, and record the
//! request's metrics (outcome, end-to-end latency, time to first token) as its events pass.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::admission::{self, Admission};
use super::answer::{Answer, AnswerEvent, AnswerRequest, PiceInfo};
use super::error::ApiError;
use super::metrics::GatewayMetrics;
use super::mode::{self, Question};
use super::passthrough::{self, Relayed};
use super::progressive::{self, Sketched};
use super::state::Gateway;
use pice_api::RoutingMode;

/// How a request is answered, once its first step succeeded.
pub enum Reply {
    /// Progressive: the gateway writes the answer.
    Written(Answer),
    /// Cloud-only: the cloud's answer is relayed as it is.
    Relayed(Box<Relayed>),
}

/// Answers `request` in the mode the decision picks; fails only before any text exists.
pub async fn answer(gateway: &Arc<Gateway>, request: AnswerRequest) -> Result<Reply, ApiError> {
    let started = Instant::now();
    let question = || Question {
        suitable: gateway.router.suitable(&request.question),
        conversation: request.conversation,
    };
    let blocked = request.blocker.is_some();
    let mut decision =
        mode::decide(request.requested, blocked, question, || gateway.latency_inputs(request.max_tokens));
    if decision.finds_no_edge(|| !gateway.replicas.usable().is_empty()) {
        gateway.metrics.edge_wakeup_requests.inc();
    }
    if decision.mode == RoutingMode::Progressive {
        let inputs = gateway.latency_inputs(request.max_tokens);
        let routing = &gateway.config.routing;
        let seconds = |millis: i32| f64::from(millis) / 1000.0;
        let admitted = admission::admit(
            &inputs,
            seconds(routing.expansion.deadline_ms),
            seconds(routing.admission.max_latency_ms),
        );
        gateway.metrics.admission.with_label_values(&[admitted.as_str()]).inc();
        match admitted {
            Admission::Progressive => {}
            Admission::Cloud => {
                let reason = if inputs.edge_makespan.is_some() {
                    mode::Reason::EdgeBusy
                } else {
                    mode::Reason::NoEdges
                };
                decision = mode::Decision { mode: RoutingMode::Cloud, reason };
            }
            Admission::Rejected { retry_after_seconds } => {
                Record::new(gateway.metrics.clone(), RoutingMode::Progressive, started).finish("rejected");
                return Err(ApiError::over_capacity(retry_after_seconds));
            }
        }
    }
    if let Some(blocker) = request.blocker.as_ref().filter(|_| decision.reason == mode::Reason::Contract) {
        gateway.metrics.contract_cloud_only.with_label_values(&[blocker.label()]).inc();
    }
    let pice = PiceInfo::new(decision, request.requested, request.blocker.as_ref());
    let record = |mode| Record::new(gateway.metrics.clone(), mode, started);
    let pice = match decision.mode {
        RoutingMode::Progressive => match progressive::answer(gateway, &request, pice).await {
            Ok(Sketched::Points(answer) | Sketched::Declined(answer)) => {
                let events = observed(answer.events, record(answer.mode));
                return Ok(Reply::Written(Answer { mode: answer.mode, events }));
            }
            Ok(Sketched::Empty(pice)) => pice,
            Err(error) => {
                record(RoutingMode::Progressive).finish("error");
                return Err(error);
            }
        },
        _ => pice,
    };
    let relayed = passthrough::start(gateway, &request, pice, record(RoutingMode::Cloud)).await?;
    Ok(Reply::Relayed(Box::new(relayed)))
}

/// Passes `events` through, noting the first text and how the answer ended.
fn observed(
    mut events: BoxStream<'static, AnswerEvent>,
    mut record: Record,
) -> BoxStream<'static, AnswerEvent> {
    async_stream::stream! {
        while let Some(event) = events.next().await {
            match &event {
                AnswerEvent::Text(_) => record.first_text(),
                AnswerEvent::End(end) => record.finish(if end.pice.degraded { "degraded" } else { "ok" }),
                AnswerEvent::Failed(_) => record.finish("error"),
            }
            yield event;
        }
    }
    .boxed()
}

/// The metrics of one request; one dropped before it finished was cancelled by its client.
pub struct Record {
    metrics: GatewayMetrics,
    mode: &'static str,
    started: Instant,
    first_text: bool,
    finished: bool,
}

impl Record {
    fn new(metrics: GatewayMetrics, mode: RoutingMode, started: Instant) -> Self {
        Self { metrics, mode: mode.as_str(), started, first_text: false, finished: false }
    }

    /// Notes the first text of the answer (once).
    pub fn first_text(&mut self) {
        if !self.first_text {
            self.first_text = true;
            let elapsed = self.started.elapsed().as_secs_f64();
            self.metrics.time_to_first_token.with_label_values(&[self.mode]).observe(elapsed);
        }
    }

    /// Notes how the answer ended (once).
    pub fn finish(&mut self, outcome: &'static str) {
        if !self.finished {
            self.finished = true;
            self.metrics.requests.with_label_values(&[self.mode, outcome]).inc();
            let elapsed = self.started.elapsed().as_secs_f64();
            self.metrics.request_duration.with_label_values(&[self.mode]).observe(elapsed);
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.finish("cancelled");
    }
}
