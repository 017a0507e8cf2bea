//! One request from question to answer: classify, decide the mode, run it, and record the
//! request's metrics (outcome, end-to-end latency, time to first token) as its events pass.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::answer::{Answer, AnswerEvent, AnswerRequest, PiceInfo};
use super::error::ApiError;
use super::metrics::GatewayMetrics;
use super::mode::{self, Question};
use super::state::Gateway;
use super::{cloud_only, progressive, suitability};
use pice_api::RoutingMode;

/// Answers `request` in the mode the decision picks; fails only before any text exists.
pub async fn answer(gateway: &Arc<Gateway>, request: AnswerRequest) -> Result<Answer, ApiError> {
    let started = Instant::now();
    let question = || Question {
        suitable: suitability::classify(&request.question).suitable(),
        conversation: request.conversation,
    };
    let decision = mode::decide(request.requested, question, || gateway.latency_inputs(request.max_tokens));
    if decision.finds_no_edge(|| !gateway.replicas.usable().is_empty()) {
        gateway.metrics.edge_wakeup_requests.inc();
    }
    let pice = PiceInfo::new(decision, request.requested);
    let result = match decision.mode {
        RoutingMode::Progressive => progressive::answer(gateway, &request, pice).await,
        _ => cloud_only::answer(gateway, &request, pice).await,
    };
    match result {
        Ok(answer) => Ok(Answer {
            mode: answer.mode,
            events: observed(answer.events, Record::new(gateway.metrics.clone(), answer.mode, started)),
        }),
        Err(error) => {
            Record::new(gateway.metrics.clone(), decision.mode, started).finish("error");
            Err(error)
        }
    }
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
struct Record {
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

    fn first_text(&mut self) {
        if !self.first_text {
            self.first_text = true;
            let elapsed = self.started.elapsed().as_secs_f64();
            self.metrics.time_to_first_token.with_label_values(&[self.mode]).observe(elapsed);
        }
    }

    fn finish(&mut self, outcome: &'static str) {
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
