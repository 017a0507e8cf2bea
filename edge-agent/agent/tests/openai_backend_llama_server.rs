//! The edge agent's `openai` backend against a real llama.cpp server (llama-cpp-python's
//! `llama_cpp.server`, see tests/llama/server-venv.sh) serving SmolLM2-135M: a point expands into
//! real text with its token counts and log-probabilities, and the expansions of one sketch reuse
//! the cached prompt. Ignored in the plain test run: `make llama` builds the server's venv,
//! fetches the model and runs them with `PICE_LLAMA_SERVER_PYTHON` and `PICE_MODEL_PATH` set.
#![allow(clippy::unwrap_used)]

#[path = "common/llama_server.rs"]
mod llama_server;

use std::time::{Duration, Instant};

use futures::StreamExt;
use llama_server::{LlamaServer, MODEL};
use pice_wire::generation::{ExpansionRequest, GenerationEvent, ModelBackend, Usage};
use pice_wire::openai_client::{ChatOptions, OpenAiBackend};
use pice_wire::openai_wire::ChatMessage;

/// Point `point_index` of a three-point sketch about tides.
fn point(point_index: usize) -> ExpansionRequest {
    ExpansionRequest {
        question: "Why does the sea have tides?".into(),
        sketch: vec![
            "The moon's gravity pulls the water".into(),
            "The sun adds a smaller pull".into(),
            "The earth turns under the bulges".into(),
        ],
        point_index,
        max_tokens: 24,
        want_logprobs: true,
        seed: Some(7),
        ..ExpansionRequest::default()
    }
}

/// Runs a generation to its end: the text, the end, and how long it took.
async fn expand(backend: &OpenAiBackend, request: ExpansionRequest) -> (String, Usage, Duration) {
    let started = Instant::now();
    let mut stream = backend.generate(request).await.unwrap();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            GenerationEvent::Text(delta) => text.push_str(&delta),
            GenerationEvent::Finished(usage) => return (text, usage, started.elapsed()),
        }
    }
    panic!("the stream ended without its end; text so far: {text:?}");
}

#[tokio::test]
#[ignore = "needs llama-cpp-python's server and SmolLM2 (`make llama`)"]
async fn a_point_expands_into_real_text_with_its_token_counts() {
    let server = LlamaServer::start(&[]).await;
    let backend = OpenAiBackend::new(&server.base_url, MODEL).unwrap();
    assert!(backend.ready().await);

    let (text, usage, _) = expand(&backend, point(0)).await;
    assert!(!text.trim().is_empty(), "no text");
    assert!((1..=24).contains(&usage.completion_tokens), "{usage:?}");
    // llama-cpp-python ignores `stream_options`: a stream carries no usage, so its prompt
    // tokens are unknown and its completion tokens are its text deltas. When that changes, this
    // fails: tighten it then. Per-token logprobs come back because the backend sends
    // `top_logprobs: 0` beside `logprobs: true` (this server needs both).
    assert_eq!(usage.prompt_tokens, 0, "{usage:?}");
    assert!(usage.mean_logprob.is_some_and(|mean| mean < 0.0), "{usage:?}");

    let messages = vec![ChatMessage::new("user", "Name one planet.")];
    let options = ChatOptions { max_tokens: Some(16), seed: Some(7), ..ChatOptions::default() };
    let mut whole = backend.complete(messages, options).await.unwrap();
    let (Some(Ok(GenerationEvent::Text(text))), Some(Ok(GenerationEvent::Finished(usage)))) =
        (whole.next().await, whole.next().await)
    else {
        panic!("a whole completion is its text then its end");
    };
    assert!(!text.trim().is_empty(), "no text");
    assert!(usage.prompt_tokens > 0 && (1..=16).contains(&usage.completion_tokens), "{usage:?}");
}

#[tokio::test]
#[ignore = "needs llama-cpp-python's server and SmolLM2 (`make llama`)"]
async fn the_second_point_of_a_sketch_reuses_the_prompt_the_server_cached() {
    let server = LlamaServer::start(&[]).await;
    let backend = OpenAiBackend::new(&server.base_url, MODEL).unwrap().with_prompt_cache(true);
    warm_up(&backend).await;
    let (_, _, first) = expand(&backend, point(0)).await;
    let (text, usage, second) = expand(&backend, point(1)).await;
    assert!(!text.trim().is_empty() && usage.completion_tokens > 0, "{text:?} {usage:?}");
    // The server says, per request, how much of the prompt its KV cache already held.
    let log = server.log();
    let (reused, evaluated) = prefix_hits(&log).last().copied().expect("no prefix-match hit in the log");
    assert!(reused > 2 * evaluated, "{reused} prompt tokens reused, {evaluated} evaluated");
    println!("first {first:?}, second {second:?}: {reused} prompt tokens reused, {evaluated} evaluated");
}

/// One short unrelated completion, so that the first expansion's time is its prompt's and not
/// the server's first decode.
async fn warm_up(backend: &OpenAiBackend) {
    let messages = vec![ChatMessage::new("user", "Hi")];
    let options = ChatOptions { max_tokens: Some(1), ..ChatOptions::default() };
    let whole = backend.complete(messages, options).await.unwrap();
    assert_eq!(whole.count().await, 2);
}

/// llama-cpp-python's `Llama.generate: 70 prefix-match hit, remaining 9 prompt tokens to eval`
/// lines, as (reused, evaluated) token counts.
fn prefix_hits(log: &str) -> Vec<(u32, u32)> {
    log.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Llama.generate: ")?;
            let (reused, rest) = rest.split_once(" prefix-match hit, remaining ")?;
            let (evaluated, _) = rest.split_once(' ')?;
            Some((reused.parse().ok()?, evaluated.parse().ok()?))
        })
        .collect()
}
