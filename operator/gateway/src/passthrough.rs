//! Cloud-only answers as a faithful pass-through: the client's body goes to the cloud server as
//! sent, with only `model` mapped to the cloud's name, to the same API (`/chat/completions` or
//! `/completions`); the server's answer comes back whole — every choice, tool call,
//! log-probability, refusal, finish reason, usage and fingerprint — with `model` mapped back
//! and PICE's `pice` field added (to the whole response, or to each streamed chunk that
//! carries a finish reason). A 4xx from the cloud comes back with its status and error.
//!
//! Streamed chunks are relayed event by event as they arrive; their timing and token counts
//! feed the cloud estimates of the `auto` decision, as every cloud answer's do.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pice_wire::sse::SseDecoder;
use serde_json::{Map, Value};

use super::answer::{AnswerRequest, PiceInfo};
use super::error::ApiError;
use super::estimates::Stopwatch;
use super::pipeline::Record;
use super::render::{self, Flavor, Heard};
use super::state::Gateway;

/// A cloud answer whose headers have arrived with a success status.
pub struct Relayed {
    response: reqwest::Response,
    streamed: bool,
    model: String,
    pice: PiceInfo,
    watch: Stopwatch,
    /// The request's metrics, finished as the answer ends.
    record: Record,
}

/// Sends the request's body to the cloud; fails with the cloud's own error when it refuses
/// the request (4xx), or 503 when it cannot be reached or fails (`record` is finished then).
pub async fn start(
    gateway: &Gateway,
    request: &AnswerRequest,
    pice: PiceInfo,
    mut record: Record,
) -> Result<Relayed, ApiError> {
    let mut body = request.body.clone();
    body.insert("model".to_owned(), Value::String(gateway.cloud.model().to_owned()));
    let path = match request.flavor {
        Flavor::Chat => "/chat/completions",
        Flavor::Text => "/completions",
    };
    let watch = Stopwatch::start();
    let response = match gateway.cloud.post_json(path, &body).await {
        Ok(response) => response,
        Err(error) => {
            record.finish("error");
            return Err(ApiError::from_cloud(&error));
        }
    };
    let status = response.status();
    if !status.is_success() {
        record.finish("error");
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = response.bytes().await.unwrap_or_default();
        let mut error = ApiError::from_upstream(status.as_u16(), &body);
        error.retry_after = retry_after.filter(|_| status == StatusCode::TOO_MANY_REQUESTS);
        return Err(error);
    }
    Ok(Relayed { response, streamed: request.streamed, model: request.model.clone(), pice, watch, record })
}

impl Relayed {
    /// The client's response.
    pub async fn respond(self, gateway: Arc<Gateway>) -> Response {
        if self.streamed { self.stream(gateway) } else { self.whole(&gateway).await }
    }

    async fn whole(self, gateway: &Gateway) -> Response {
        let Self { response, model, mut pice, mut record, .. } = self;
        let parsed = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut answer = match parsed {
            Ok(Value::Object(answer)) => answer,
            Ok(_) => {
                return failed(
                    &mut record,
                    ApiError::cloud_unavailable("it answered with JSON that is not an object"),
                );
            }
            Err(error) => {
                return failed(
                    &mut record,
                    ApiError::cloud_unavailable(format!("its answer broke off: {error}")),
                );
            }
        };
        record.first_text();
        let tokens = Tally::default().read(&answer).usage_completion.unwrap_or(0);
        count(gateway, None, tokens, &mut pice, &answer);
        map_model(&mut answer, &model);
        answer.insert("pice".to_owned(), serde_json::to_value(&pice).unwrap_or_default());
        record.finish("ok");
        render::with_mode(axum::Json(answer).into_response(), pice.mode)
    }

    fn stream(self, gateway: Arc<Gateway>) -> Response {
        let Self { response, model, mut pice, mut watch, mut record, .. } = self;
        let mode = pice.mode;
        let events = async_stream::stream! {
            let mut decoder = SseDecoder::default();
            let mut tally = Tally::default();
            let heard = render::with_silences(response.bytes_stream(), render::KEEP_ALIVE);
            futures::pin_mut!(heard);
            while let Some(next) = heard.next().await {
                let bytes = match next {
                    Heard::Silence => {
                        yield Bytes::from_static(b":\n\n");
                        continue;
                    }
                    Heard::Item(Ok(bytes)) => bytes,
                    Heard::Item(Err(error)) => {
                        let error = ApiError::cloud_unavailable(format!("its answer broke off: {error}"));
                        record.finish("error");
                        yield render::event(&error.body());
                        return;
                    }
                };
                for data in decoder.push(&bytes).into_iter() {
                    if data == "[DONE]" {
                        count(&gateway, Some(&watch), tally.tokens(), &mut pice, &Map::new());
                        record.finish("ok");
                        yield Bytes::from_static(b"data: [DONE]\n\n");
                        return;
                    }
                    let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(&data) else {
                        yield data_event(data.as_bytes());
                        continue;
                    };
                    let read = tally.read(&chunk);
                    if read.text {
                        watch.text();
                        record.first_text();
                    }
                    map_model(&mut chunk, &model);
                    if read.finished {
                        pice.cloud_tokens = tally.tokens();
                        chunk.insert("pice".to_owned(), serde_json::to_value(&pice).unwrap_or_default());
                    }
                    yield data_event(&serde_json::to_vec(&chunk).unwrap_or_default());
                }
            }
            let error = ApiError::cloud_unavailable("the answer stream ended early");
            record.finish("error");
            yield render::event(&error.body());
        };
        render::event_stream(events, mode)
    }
}

fn failed(record: &mut Record, error: ApiError) -> Response {
    record.finish("error");
    error.into_response()
}

/// One server-sent event carrying `data` (a JSON text: it has no raw newline).
fn data_event(data: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(data.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// Sets an answer object's `model` to the name the client asked for.
fn map_model(object: &mut Map<String, Value>, model: &str) {
    if let Some(value) = object.get_mut("model") {
        *value = Value::String(model.to_owned());
    }
}

/// Counts a finished cloud answer into the metrics, the estimates and `pice`; a streamed one's
/// timing (`watch`) also feeds the cloud's time-per-token estimate.
fn count(
    gateway: &Gateway,
    watch: Option<&Stopwatch>,
    tokens: u32,
    pice: &mut PiceInfo,
    answer: &Map<String, Value>,
) {
    pice.cloud_tokens = tokens;
    if let Some(prompt) = answer.get("usage").and_then(|u| u.get("prompt_tokens")).and_then(Value::as_u64) {
        pice.cloud_prompt_tokens = u32::try_from(prompt).unwrap_or(u32::MAX);
    }
    gateway.metrics.cloud_tokens.with_label_values(&["answer"]).inc_by(u64::from(tokens));
    let mut estimates = gateway.estimates();
    if let Some(watch) = watch {
        estimates.observe(&watch.finish(tokens));
    }
    estimates.answer_tokens.observe(f64::from(tokens));
}

/// What the chunks of an answer said so far: text deltas, and the server's own token count.
#[derive(Debug, Default)]
struct Tally {
    deltas: u32,
    usage_completion: Option<u32>,
}

/// What one chunk held.
struct Read {
    text: bool,
    finished: bool,
    usage_completion: Option<u32>,
}

impl Tally {
    /// Reads a chunk (or a whole answer): whether it carries text or a finish reason, and its
    /// usage. Content deltas count one token each until the server reports usage.
    fn read(&mut self, chunk: &Map<String, Value>) -> Read {
        let choices = chunk.get("choices").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let has_text = |choice: &Value| {
            let text = choice.get("delta").and_then(|d| d.get("content")).or_else(|| choice.get("text"));
            text.and_then(Value::as_str).is_some_and(|text| !text.is_empty())
                || choice.get("delta").and_then(|d| d.get("tool_calls")).is_some()
        };
        let text = choices.iter().any(has_text);
        if text {
            self.deltas = self.deltas.saturating_add(1);
        }
        let usage = chunk.get("usage").and_then(|u| u.get("completion_tokens")).and_then(Value::as_u64);
        if let Some(tokens) = usage {
            self.usage_completion = Some(u32::try_from(tokens).unwrap_or(u32::MAX));
        }
        let finished = choices.iter().any(|choice| choice.get("finish_reason").is_some_and(|r| !r.is_null()));
        Read { text, finished, usage_completion: self.usage_completion }
    }

    /// Completion tokens: the server's count when it gave one, else the text deltas.
    fn tokens(&self) -> u32 {
        self.usage_completion.unwrap_or(self.deltas)
    }
}
