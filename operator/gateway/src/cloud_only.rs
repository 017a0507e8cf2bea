//! Cloud-only answers: the conversation goes to the cloud LLM as it is and its text streams
//! back (or comes whole, when the client reads it whole); the timing of streamed answers feeds
//! the cloud estimates of the `auto` decision.

use std::sync::Arc;

use futures::StreamExt;
use pice_wire::generation::{GenerationEvent, GenerationStream};
use pice_wire::openai_client::ChatOptions;

use super::answer::{Answer, AnswerEnd, AnswerEvent, AnswerRequest, PiceInfo, usage};
use super::error::ApiError;
use super::estimates::Stopwatch;
use super::state::Gateway;
use pice_api::RoutingMode;

/// Starts the cloud's answer; fails (503, or 400 when the cloud refuses the request) when the
/// cloud does not accept it.
pub async fn answer(
    gateway: &Arc<Gateway>,
    request: &AnswerRequest,
    pice: PiceInfo,
) -> Result<Answer, ApiError> {
    let watch = Stopwatch::start();
    let options =
        ChatOptions { max_tokens: Some(request.max_tokens), seed: request.seed, want_logprobs: false };
    let messages = request.messages.clone();
    let stream = if request.streamed {
        gateway.cloud.chat(messages, options).await
    } else {
        gateway.cloud.complete(messages, options).await
    };
    let stream = stream.map_err(|e| ApiError::from_cloud(&e))?;
    let timed = request.streamed;
    Ok(Answer { mode: RoutingMode::Cloud, events: relay(Arc::clone(gateway), stream, watch, timed, pice) })
}

fn relay(
    gateway: Arc<Gateway>,
    mut stream: GenerationStream,
    mut watch: Stopwatch,
    timed: bool,
    mut pice: PiceInfo,
) -> futures::stream::BoxStream<'static, AnswerEvent> {
    async_stream::stream! {
        while let Some(event) = stream.next().await {
            match event {
                Ok(GenerationEvent::Text(text)) => {
                    watch.text();
                    yield AnswerEvent::Text(text);
                }
                Ok(GenerationEvent::Finished(finished)) => {
                    let tokens = finished.completion_tokens;
                    record(&gateway, timed.then_some(&watch), tokens);
                    pice.cloud_tokens = pice.cloud_tokens.saturating_add(tokens);
                    let usage = usage(finished.prompt_tokens, tokens);
                    let finish_reason = finished.finish_reason.as_str();
                    yield AnswerEvent::End(AnswerEnd { finish_reason, usage, pice });
                    return;
                }
                Err(error) => {
                    yield AnswerEvent::Failed(ApiError::from_cloud(&error));
                    return;
                }
            }
        }
        yield AnswerEvent::Failed(ApiError::cloud_unavailable("the answer stream ended early"));
    }
    .boxed()
}

/// Counts the answer's tokens; a streamed answer's timing also feeds the cloud estimates (a
/// whole one has no time to first token to give).
fn record(gateway: &Gateway, timing: Option<&Stopwatch>, tokens: u32) {
    gateway.metrics.cloud_tokens.with_label_values(&["answer"]).inc_by(u64::from(tokens));
    let mut estimates = gateway.estimates();
    if let Some(watch) = timing {
        estimates.observe(&watch.finish(tokens));
    }
    estimates.answer_tokens.observe(f64::from(tokens));
}
