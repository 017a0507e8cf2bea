//! Rendering an answer in OpenAI's shapes: a whole `chat.completion` / `text_completion`, or
//! server-sent chunks ending in `[DONE]`. Both read the same answer events, so a streamed
//! answer's text is the whole answer's text. The final chunk and the whole response carry a
//! `pice` field, and the `x-pice-mode` header names the mode that ran.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use pice_wire::openai_wire::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, Choice, ChunkChoice, Delta, TextChoice, TextCompletion,
    Usage,
};
use serde::Serialize;
use tokio::time::Instant;

use super::answer::{Answer, AnswerEnd, AnswerEvent, PiceInfo};
use super::error::ApiError;
use super::request::MODE_HEADER;

/// Silence after which a stream gets a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most chunks joined into one body frame.
const READY_CHUNKS: usize = 64;

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
                return with_mode(object(flavor, &meta, text, &end), answer.mode.as_str());
            }
            AnswerEvent::Failed(error) => return error.into_response(),
        }
    }
    ApiError::cloud_unavailable("the answer ended early").into_response()
}

/// Streams the answer as server-sent chunks ([`event_stream`]); a comment
/// every 15 s of silence keeps idle connections open.
pub fn streamed(answer: Answer, flavor: Flavor, meta: Meta, include_usage: bool) -> Response {
    let mode = answer.mode.as_str();
    let events = answer.events;
    let chunks = async_stream::stream! {
        if flavor == Flavor::Chat {
            yield chunk(flavor, &meta, ChunkContent::Role, None, None);
        }
        let heard = with_silences(events, KEEP_ALIVE);
        futures::pin_mut!(heard);
        while let Some(next) = heard.next().await {
            match next {
                Heard::Silence => yield Bytes::from_static(b":\n\n"),
                Heard::Item(AnswerEvent::Text(text)) => {
                    yield chunk(flavor, &meta, ChunkContent::Text(text), None, None);
                }
                Heard::Item(AnswerEvent::End(end)) => {
                    yield chunk(flavor, &meta, ChunkContent::None, Some(end.finish_reason), Some(&end.pice));
                    if include_usage {
                        yield usage_chunk(flavor, &meta, end.pice.usage());
                    }
                    yield Bytes::from_static(b"data: [DONE]\n\n");
                    return;
                }
                Heard::Item(AnswerEvent::Failed(error)) => {
                    yield event(&error.body());
                    return;
                }
            }
        }
    };
    event_stream(chunks, mode)
}

/// A `text/event-stream` response of `events`. Events that are ready together (the deltas of
/// one read from upstream) go out as one body frame, so one write, not one per event.
pub fn event_stream(events: impl Stream<Item = Bytes> + Send + 'static, mode: &'static str) -> Response {
    let frames =
        events.ready_chunks(READY_CHUNKS).map(|ready| Ok::<_, Infallible>(Bytes::from(ready.concat())));
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    with_mode((headers, Body::from_stream(frames)).into_response(), mode)
}

/// What a stream brought next: an item, or a silence of the whole period.
#[derive(Debug, PartialEq)]
pub enum Heard<T> {
    Item(T),
    Silence,
}

/// `items` with a [`Heard::Silence`] after every `period` in which none came. One timer serves
/// the whole stream and is moved on only when it fires before its period is up, so a stream of
/// many quick items does not arm and cancel a timer per item.
pub fn with_silences<S>(mut items: S, period: Duration) -> impl Stream<Item = Heard<S::Item>>
where
    S: Stream + Unpin,
{
    async_stream::stream! {
        let timer = tokio::time::sleep(period);
        tokio::pin!(timer);
        let mut last = Instant::now();
        loop {
            tokio::select! {
                biased;
                next = items.next() => match next {
                    Some(item) => {
                        last = Instant::now();
                        yield Heard::Item(item);
                    }
                    None => return,
                },
                () = &mut timer => {
                    let due = last + period;
                    if Instant::now() >= due {
                        yield Heard::Silence;
                        last = Instant::now();
                        timer.as_mut().reset(last + period);
                    } else {
                        timer.as_mut().reset(due);
                    }
                }
            }
        }
    }
}

pub fn with_mode(mut response: Response, mode: &'static str) -> Response {
    response.headers_mut().insert(MODE_HEADER, HeaderValue::from_static(mode));
    response
}

/// One server-sent event whose data is `data` as JSON (one line: JSON text has no raw newline).
pub fn event(data: &impl Serialize) -> Bytes {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut line, data).is_err() {
        return Bytes::from_static(b": unserialisable chunk\n\n");
    }
    line.extend_from_slice(b"\n\n");
    Bytes::from(line)
}

/// What one chunk carries.
enum ChunkContent {
    /// The opening chat chunk: the assistant role and empty content.
    Role,
    Text(String),
    None,
}

/// One chunk as an event, serialised straight from the typed object (no intermediate
/// `serde_json::Value`: this runs once per streamed delta).
fn chunk(
    flavor: Flavor,
    meta: &Meta,
    content: ChunkContent,
    finish_reason: Option<&str>,
    pice: Option<&PiceInfo>,
) -> Bytes {
    let finish_reason = finish_reason.map(str::to_owned);
    match flavor {
        Flavor::Chat => {
            let delta = match content {
                ChunkContent::Role => Delta { role: Some("assistant".into()), content: Some(String::new()) },
                ChunkContent::Text(text) => Delta { role: None, content: Some(text) },
                ChunkContent::None => Delta::default(),
            };
            let choice = ChunkChoice { index: 0, delta, finish_reason, logprobs: None };
            event(&WithPice { body: ChatCompletionChunk { choices: vec![choice], ..chat_chunk(meta) }, pice })
        }
        Flavor::Text => {
            let text = match content {
                ChunkContent::Text(text) => text,
                ChunkContent::Role | ChunkContent::None => String::new(),
            };
            let choice = TextChoice { index: 0, text, finish_reason, logprobs: None };
            event(&WithPice { body: TextCompletion { choices: vec![choice], ..text_object(meta) }, pice })
        }
    }
}

fn usage_chunk(flavor: Flavor, meta: &Meta, usage: Usage) -> Bytes {
    match flavor {
        Flavor::Chat => event(&ChatCompletionChunk { usage: Some(usage), ..chat_chunk(meta) }),
        Flavor::Text => event(&TextCompletion { usage: Some(usage), ..text_object(meta) }),
    }
}

/// A whole completion of `text`, with the `pice` field.
fn object(flavor: Flavor, meta: &Meta, text: String, end: &AnswerEnd) -> Response {
    let finish_reason = Some(end.finish_reason.to_owned());
    let usage = Some(end.pice.usage());
    let pice = Some(&end.pice);
    match flavor {
        Flavor::Chat => {
            let body = ChatCompletion {
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
            };
            Json(WithPice { body, pice }).into_response()
        }
        Flavor::Text => {
            let body = TextCompletion {
                choices: vec![TextChoice { index: 0, text, finish_reason, logprobs: None }],
                usage,
                ..text_object(meta)
            };
            Json(WithPice { body, pice }).into_response()
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::{Heard, with_silences};

    /// Items that arrive at the given seconds after the start (time is paused and advanced by
    /// Tokio, so the test takes no real time).
    fn arriving_at(seconds: &'static [u64]) -> impl futures::Stream<Item = u64> + Unpin {
        Box::pin(async_stream::stream! {
            let start = tokio::time::Instant::now();
            for &at in seconds {
                tokio::time::sleep_until(start + Duration::from_secs(at)).await;
                yield at;
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_silence_is_heard_after_each_whole_period_without_an_item() {
        let heard: Vec<_> = with_silences(arriving_at(&[1, 40]), Duration::from_secs(15)).collect().await;
        let expected = vec![Heard::Item(1), Heard::Silence, Heard::Silence, Heard::Item(40)];
        assert_eq!(heard, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn items_closer_than_the_period_are_never_interrupted_by_a_silence() {
        let heard: Vec<_> =
            with_silences(arriving_at(&[10, 20, 30, 44]), Duration::from_secs(15)).collect().await;
        assert_eq!(heard, vec![Heard::Item(10), Heard::Item(20), Heard::Item(30), Heard::Item(44)]);
    }
}
