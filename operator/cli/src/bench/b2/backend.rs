//! The zero-delay OpenAI-compatible backend every system of B2 forwards to: it answers each
//! chat completion at once with the same pre-rendered `n`-word answer (a JSON body, or SSE
//! chunks with usage and `[DONE]`), and answers the health and model probes routers send.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use pice_wire::openai_wire::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, Choice, ChunkChoice, Delta, ModelCard, ModelList, Usage,
};
use serde::Deserialize;

/// Model name the backend reports (it answers any name).
pub const MODEL: &str = "bench";

/// The pre-rendered answers.
#[derive(Clone, Debug)]
pub struct Answers {
    pub json: Bytes,
    pub events: Vec<Bytes>,
}

impl Answers {
    /// The answers of `tokens` words (` word0 word1 ...`).
    pub fn new(tokens: usize) -> Self {
        let words: Vec<String> = (0..tokens).map(|i| format!(" word{i}")).collect();
        let count = u32::try_from(tokens).unwrap_or(u32::MAX);
        let usage =
            Usage { prompt_tokens: 8, completion_tokens: count, total_tokens: count.saturating_add(8) };
        let message = ChatMessage::new("assistant", words.concat());
        let choice = Choice { index: 0, message, finish_reason: Some("stop".into()), logprobs: None };
        let completion = ChatCompletion {
            id: "chatcmpl-b2".into(),
            object: "chat.completion".into(),
            model: MODEL.into(),
            choices: vec![choice],
            usage: Some(usage),
            ..ChatCompletion::default()
        };
        let chunk = |content: Option<String>, finish: Option<&str>, usage: Option<Usage>| {
            let delta = Delta { role: Some("assistant".into()).filter(|_| content.is_some()), content };
            let choice =
                ChunkChoice { index: 0, delta, finish_reason: finish.map(str::to_owned), logprobs: None };
            let chunk = ChatCompletionChunk {
                id: "chatcmpl-b2".into(),
                object: "chat.completion.chunk".into(),
                model: MODEL.into(),
                choices: vec![choice],
                usage,
                ..ChatCompletionChunk::default()
            };
            sse(&serde_json::to_string(&chunk).unwrap_or_default())
        };
        let mut events: Vec<Bytes> = words.into_iter().map(|word| chunk(Some(word), None, None)).collect();
        events.push(chunk(None, Some("stop"), Some(usage)));
        events.push(sse("[DONE]"));
        Self { json: Bytes::from(serde_json::to_vec(&completion).unwrap_or_default()), events }
    }
}

fn sse(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The part of a request the backend reads.
#[derive(Deserialize)]
struct Wants {
    #[serde(default)]
    stream: bool,
}

async fn complete(State(answers): State<Arc<Answers>>, body: Bytes) -> Response {
    let stream = serde_json::from_slice::<Wants>(&body).is_ok_and(|wants| wants.stream);
    if !stream {
        return ([(header::CONTENT_TYPE, "application/json")], answers.json.clone()).into_response();
    }
    let events = answers.events.clone().into_iter().map(Ok::<_, std::convert::Infallible>);
    let body = Body::from_stream(futures::stream::iter(events));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn models() -> axum::Json<ModelList> {
    let card =
        ModelCard { id: MODEL.into(), object: "model".into(), owned_by: "b2".into(), ..ModelCard::default() };
    axum::Json(ModelList { object: "list".into(), data: vec![card] })
}

/// The backend's routes.
pub fn router(answers: Answers) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(complete))
        .route("/v1/models", get(models))
        .fallback(|| async { axum::Json(serde_json::json!({})) })
        .with_state(Arc::new(answers))
}

/// Serves on `addr` until SIGTERM or Ctrl-C (on the `pice` process's runtime, as many worker
/// threads as cores); prints `listening on ADDR` first.
pub async fn serve(addr: SocketAddr, tokens: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    let listener = listener.tap_io(|tcp| {
        let _unsupported = tcp.set_nodelay(true);
    });
    let shutdown = pice_wire::shutdown::signal();
    axum::serve(listener, router(Answers::new(tokens))).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_streamed_answer_is_one_chunk_per_word_then_usage_then_done() {
        let answers = Answers::new(3);
        assert_eq!(answers.events.len(), 5);
        let first = std::str::from_utf8(&answers.events[0]).unwrap();
        assert!(
            first.starts_with("data: {") && first.ends_with("\n\n") && first.contains(" word0"),
            "{first}"
        );
        let last = std::str::from_utf8(&answers.events[3]).unwrap();
        assert!(
            last.contains("\"completion_tokens\":3") && last.contains("\"finish_reason\":\"stop\""),
            "{last}"
        );
        assert_eq!(&answers.events[4][..], b"data: [DONE]\n\n");
        let json: ChatCompletion = serde_json::from_slice(&answers.json).unwrap();
        assert_eq!(json.choices[0].message.text(), " word0 word1 word2");
    }
}
