//! Rendering an answer in OpenAI's shapes: a whole `chat.completion` / `text_completion`, or
//! server-sent chunks ending in `[DONE]`. Both read the same answer events, so a streamed
//! answer's text is the whole answer's text. The final chunk and the whole response carry a
//! `pice` field, and the `x-pice-mode` header names the mode that ran.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pice_edge_agent::openai_wire::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, Choice, ChunkChoice, Delta, TextChoice, TextCompletion,
    Usage,
};
use serde::Serialize;

use super::answer::{Answer, AnswerEnd, AnswerEvent, PiceInfo};
use super::error::ApiError;
use super::request::MODE_HEADER;

/// Which API the answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Text,
}

/// The fields every object of one completion repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// An OpenAI object with PICE's `pice` field beside its own.
#[derive(Serialize)]
struct WithPice<'a, T: Serialize> {
    #[serde(flatten)]
    body: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pice: Option<&'a PiceInfo>,
}

/// Reads the whole answer into one response; a failure before the end is answered as an error.
pub async fn whole(answer: Answer, flavor: Flavor, meta: Meta) -> Response {
    let mut text = String::new();
    let mut events = answer.events;
    while let Some(event) = events.next().await {
        match event {
            AnswerEvent::Text(delta) => text.push_str(&delta),
            AnswerEvent::End(end) => {
                let body = WithPice { body: object(flavor, &meta, text, &end), pice: Some(&end.pice) };
                return with_mode(Json(body).into_response(), answer.mode.as_str());
            }
            AnswerEvent::Failed(error) => return error.into_response(),
        }
    }
    ApiError::cloud_unavailable("the answer ended early").into_response()
}

/// Streams the answer as server-sent chunks.
pub fn streamed(answer: Answer, flavor: Flavor, meta: Meta, include_usage: bool) -> Response {
    let mode = answer.mode.as_str();
    let mut events = answer.events;
    let chunks = async_stream::stream! {
        if flavor == Flavor::Chat {
            yield event(&chunk(flavor, &meta, ChunkContent::Role, None, None));
        }
        while let Some(answer_event) = events.next().await {
            match answer_event {
                AnswerEvent::Text(text) => yield event(&chunk(flavor, &meta, ChunkContent::Text(text), None, None)),
                AnswerEvent::End(end) => {
                    yield event(&chunk(flavor, &meta, ChunkContent::None, Some(end.finish_reason), Some(&end.pice)));
                    if include_usage {
                        yield event(&usage_chunk(flavor, &meta, end.usage));
                    }
                    yield Ok::<_, Infallible>(Event::default().data("[DONE]"));
                    return;
                }
                AnswerEvent::Failed(error) => {
                    yield event(&error.body());
                    return;
                }
            }
        }
    };
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(15));
    with_mode(Sse::new(chunks).keep_alive(keep_alive).into_response(), mode)
}

fn with_mode(mut response: Response, mode: &'static str) -> Response {
    response.headers_mut().insert(MODE_HEADER, HeaderValue::from_static(mode));
    response
}

fn event(data: &impl Serialize) -> Result<Event, Infallible> {
    Ok(Event::default().json_data(data).unwrap_or_else(|_| Event::default().comment("unserialisable chunk")))
}

/// What one chunk carries.
enum ChunkContent {
    /// The opening chat chunk: the assistant role and empty content.
    Role,
    Text(String),
    None,
}

fn chunk<'a>(
    flavor: Flavor,
    meta: &Meta,
    content: ChunkContent,
    finish_reason: Option<&str>,
    pice: Option<&'a PiceInfo>,
) -> WithPice<'a, serde_json::Value> {
    let finish_reason = finish_reason.map(str::to_owned);
    let body = match flavor {
        Flavor::Chat => {
            let delta = match content {
                ChunkContent::Role => Delta { role: Some("assistant".into()), content: Some(String::new()) },
                ChunkContent::Text(text) => Delta { role: None, content: Some(text) },
                ChunkContent::None => Delta::default(),
            };
            let choice = ChunkChoice { index: 0, delta, finish_reason, logprobs: None };
            to_value(&ChatCompletionChunk { choices: vec![choice], ..chat_chunk(meta) })
        }
        Flavor::Text => {
            let text = match content {
                ChunkContent::Text(text) => text,
                ChunkContent::Role | ChunkContent::None => String::new(),
            };
            let choice = TextChoice { index: 0, text, finish_reason, logprobs: None };
            to_value(&TextCompletion { choices: vec![choice], ..text_object(meta) })
        }
    };
    WithPice { body, pice }
}

fn usage_chunk(flavor: Flavor, meta: &Meta, usage: Usage) -> serde_json::Value {
    match flavor {
        Flavor::Chat => to_value(&ChatCompletionChunk { usage: Some(usage), ..chat_chunk(meta) }),
        Flavor::Text => to_value(&TextCompletion { usage: Some(usage), ..text_object(meta) }),
    }
}

/// A whole completion of `text`.
fn object(flavor: Flavor, meta: &Meta, text: String, end: &AnswerEnd) -> serde_json::Value {
    let finish_reason = Some(end.finish_reason.to_owned());
    let usage = Some(end.usage);
    match flavor {
        Flavor::Chat => to_value(&ChatCompletion {
            id: meta.id.clone(),
            object: "chat.completion".into(),
            created: meta.created,
            model: meta.model.clone(),
            system_fingerprint: None,
            choices: vec![Choice {
                index: 0,
                message: ChatMessage::new("assistant", text),
                finish_reason,
                logprobs: None,
            }],
            usage,
        }),
        Flavor::Text => to_value(&TextCompletion {
            choices: vec![TextChoice { index: 0, text, finish_reason, logprobs: None }],
            usage,
            ..text_object(meta)
        }),
    }
}

fn chat_chunk(meta: &Meta) -> ChatCompletionChunk {
    ChatCompletionChunk {
        id: meta.id.clone(),
        object: "chat.completion.chunk".into(),
        created: meta.created,
        model: meta.model.clone(),
        ..ChatCompletionChunk::default()
    }
}

fn text_object(meta: &Meta) -> TextCompletion {
    TextCompletion {
        id: meta.id.clone(),
        object: "text_completion".into(),
        created: meta.created,
        model: meta.model.clone(),
        ..TextCompletion::default()
    }
}

fn to_value(body: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(body).unwrap_or_default()
}
