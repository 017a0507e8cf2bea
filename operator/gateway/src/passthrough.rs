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
use std::borrow::Cow;
use std::collections::BTreeMap;

use futures::StreamExt;
use pice_wire::sse::SseDecoder;
use serde::de::IgnoredAny;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

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
    let body = Replaced { object: &request.body, model: &raw_string(gateway.cloud.model()), pice: None };
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
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                return failed(
                    &mut record,
                    ApiError::cloud_unavailable(format!("its answer broke off: {error}")),
                );
            }
        };
        let Ok(answer) = serde_json::from_slice::<BorrowedObject<'_>>(&bytes) else {
            return failed(
                &mut record,
                ApiError::cloud_unavailable("it answered with something other than a JSON object"),
            );
        };
        record.first_text();
        let usage = Tally::default().read(&answer);
        count(gateway, None, usage.completion.unwrap_or(0), usage.prompt, &mut pice);
        let pice_raw = raw_json(&pice);
        let body = Replaced { object: &answer, model: &raw_string(&model), pice: Some(&pice_raw) };
        record.finish("ok");
        let response = match serde_json::to_vec(&body) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(error) => ApiError::cloud_unavailable(format!("its answer cannot be written again: {error}"))
                .into_response(),
        };
        render::with_mode(response, pice.mode)
    }

    fn stream(self, gateway: Arc<Gateway>) -> Response {
        let Self { response, model, mut pice, mut watch, mut record, .. } = self;
        let mode = pice.mode;
        let model = raw_string(&model);
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
                for data in decoder.push(&bytes) {
                    if data == "[DONE]" {
                        count(&gateway, Some(&watch), tally.tokens(), None, &mut pice);
                        record.finish("ok");
                        yield Bytes::from_static(b"data: [DONE]\n\n");
                        return;
                    }
                    yield relay_chunk(&data, &model, &mut tally, &mut pice, || {
                        watch.text();
                        record.first_text();
                    });
                }
            }
            let error = ApiError::cloud_unavailable("the answer stream ended early");
            record.finish("error");
            yield render::event(&error.body());
        };
        render::event_stream(events, mode)
    }
}

/// One chunk as the client gets it: the model mapped, `pice` added when it finishes a choice;
/// `on_text` runs when it carries text. Data that is not a JSON object passes as it came.
fn relay_chunk(
    data: &str,
    model: &RawValue,
    tally: &mut Tally,
    pice: &mut PiceInfo,
    on_text: impl FnOnce(),
) -> Bytes {
    let Ok(chunk) = serde_json::from_str::<BorrowedObject<'_>>(data) else {
        return data_event(data.as_bytes());
    };
    let read = tally.read(&chunk);
    if read.text {
        on_text();
    }
    let pice_raw = read.finished.then(|| {
        pice.cloud_tokens = tally.tokens();
        raw_json(pice)
    });
    let relayed = Replaced { object: &chunk, model, pice: pice_raw.as_deref() };
    data_event(&serde_json::to_vec(&relayed).unwrap_or_default())
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

/// A JSON object read field by field, each value left as the bytes that came.
type BorrowedObject<'a> = BTreeMap<String, &'a RawValue>;

/// `object` with its `model` replaced and `pice` added, written without reading the other
/// fields.
struct Replaced<'a, V: Serialize> {
    object: &'a BTreeMap<String, V>,
    model: &'a RawValue,
    pice: Option<&'a RawValue>,
}

impl<V: Serialize> Serialize for Replaced<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.object {
            if name == "model" {
                map.serialize_entry(name, self.model)?;
            } else if name != "pice" || self.pice.is_none() {
                map.serialize_entry(name, value)?;
            }
        }
        if let Some(pice) = self.pice {
            map.serialize_entry("pice", pice)?;
        }
        map.end()
    }
}

/// `text` as a JSON string.
fn raw_string(text: &str) -> Box<RawValue> {
    raw_json(&text)
}

fn raw_json(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).unwrap_or_default())
}

/// Counts a finished cloud answer into the metrics, the estimates and `pice`; a streamed one's
/// timing (`watch`) also feeds the cloud's time-per-token estimate.
fn count(
    gateway: &Gateway,
    watch: Option<&Stopwatch>,
    tokens: u32,
    prompt: Option<u32>,
    pice: &mut PiceInfo,
) {
    pice.cloud_tokens = tokens;
    if let Some(prompt) = prompt {
        pice.cloud_prompt_tokens = prompt;
    }
    gateway.metrics.cloud_tokens.with_label_values(&["answer"]).inc_by(u64::from(tokens));
    let mut estimates = gateway.estimates();
    if let Some(watch) = watch {
        estimates.observe(&watch.finish(tokens));
    }
    estimates.answer_tokens.observe(f64::from(tokens));
}

/// The parts of a choice of a chunk (or of a whole answer) the gateway looks at.
#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(borrow, default)]
    delta: Option<DeltaView<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<DeltaView<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct UsageView {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
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
    prompt: Option<u32>,
    completion: Option<u32>,
}

impl Tally {
    /// Reads a chunk (or a whole answer): whether it carries text or a finish reason, and its
    /// usage. Content deltas count one token each until the server reports usage.
    fn read(&mut self, object: &BorrowedObject<'_>) -> Read {
        let view = |name: &str| object.get(name).map(|raw| raw.get()).unwrap_or("null");
        let choices: Vec<ChoiceView<'_>> = serde_json::from_str(view("choices")).unwrap_or_default();
        let has_text = |choice: &ChoiceView<'_>| {
            let delta = choice.delta.as_ref().or(choice.message.as_ref());
            let content = delta.and_then(|d| d.content.as_deref()).or(choice.text.as_deref());
            content.is_some_and(|text| !text.is_empty()) || delta.is_some_and(|d| d.tool_calls.is_some())
        };
        let text = choices.iter().any(has_text);
        if text {
            self.deltas = self.deltas.saturating_add(1);
        }
        let usage: Option<UsageView> = serde_json::from_str(view("usage")).ok().flatten();
        let (prompt, completion) = usage.map_or((None, None), |u| (u.prompt_tokens, u.completion_tokens));
        if completion.is_some() {
            self.usage_completion = completion;
        }
        let finished = choices.iter().any(|choice| choice.finish_reason.is_some());
        Read { text, finished, prompt, completion: self.usage_completion }
    }

    /// Completion tokens: the server's count when it gave one, else the text deltas.
    fn tokens(&self) -> u32 {
        self.usage_completion.unwrap_or(self.deltas)
    }
}
