//! The llama backend on a real model, SmolLM2-135M-Instruct (`make llama` fetches it and passes
//! its path in PICE_MODEL_PATH): expansion text and token accounting, streaming, the token
//! budget, seeded sampling, and cancellation that ends the generation thread.
#![cfg(feature = "llama")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::eventually;
use common::llama::{generate, model_path};
use futures::StreamExt;
use pice_edge_agent::llama::{LlamaBackend, LlamaSettings};
use pice_wire::generation::{ExpansionRequest, FinishReason, GenerationEvent, ModelBackend};

/// The model with a one-thread engine, as tests run side by side on few cores. Prefix sharing
/// is off: a seed repeats its text only when the prompt is decoded the same way, and a repeat
/// that took its prefix from the first run's cache decodes only its last token (see
/// `llama_batching.rs`, which tests sharing).
fn load() -> LlamaBackend {
    let settings = LlamaSettings {
        model_path: model_path(),
        model_name: None,
        threads: Some(1),
        slots: 4,
        context_tokens: 4096,
        share_prefix: false,
    };
    LlamaBackend::load(&settings).unwrap()
}

fn request(max_tokens: u32, seed: u64) -> ExpansionRequest {
    ExpansionRequest {
        question: "How does a heat pump heat a house?".into(),
        sketch: vec![
            "A refrigerant absorbs outdoor heat".into(),
            "A compressor raises its temperature".into(),
            "Indoor coils release the heat".into(),
        ],
        point_index: 1,
        max_tokens,
        want_logprobs: true,
        seed: Some(seed),
        ..ExpansionRequest::default()
    }
}

#[tokio::test]
async fn the_model_expands_a_point_into_text_with_sane_token_counts() {
    let backend = load();
    assert_eq!(backend.model(), "SmolLM2-135M-Instruct.Q4_1");
    assert!(backend.ready().await);
    let generated = generate(&backend, request(96, 1)).await;
    let (text, usage) = (generated.text(), generated.usage);
    eprintln!("expansion: {text:?}\nusage: {usage:?}");

    assert!(text.split_whitespace().count() >= 3, "some words: {text:?}");
    assert!(text.chars().filter(|c| c.is_alphabetic()).count() > 10, "{text:?}");
    assert!(!text.contains("<|im_"), "no chat-template markup in the text: {text:?}");
    // The chat prompt holds the system text, the question and three points: ~100–200 tokens.
    assert!((60..400).contains(&usage.prompt_tokens), "prompt tokens {}", usage.prompt_tokens);
    assert!(usage.completion_tokens as usize >= generated.pieces.len(), "a piece is at least a token");
    assert!(usage.completion_tokens <= 96);
    if usage.finish_reason == FinishReason::Length {
        assert_eq!(usage.completion_tokens, 96);
    }
    let mean = usage.mean_logprob.expect("asked for log-probabilities");
    assert!(mean < 0.0 && mean > -8.0, "a plausible mean log-probability: {mean}");
    let stats = backend.stats();
    assert_eq!((stats.completed_total, stats.cancelled_total), (1, 0));
    assert_eq!(stats.tokens_total, u64::from(usage.completion_tokens));
}

#[tokio::test]
async fn text_streams_in_pieces_while_the_model_is_still_generating() {
    let backend = load();
    let generated = generate(&backend, request(48, 2)).await;
    let completion = u64::from(generated.usage.completion_tokens);
    assert!(generated.pieces.len() >= 5, "several pieces: {:?}", generated.pieces);
    assert!(generated.pieces.iter().all(|p| !p.is_empty()));
    assert!(
        generated.tokens_at_first_piece * 2 < completion,
        "the first piece arrived after {} of {completion} tokens, not at the end",
        generated.tokens_at_first_piece
    );
}

#[tokio::test]
async fn max_tokens_ends_the_expansion_with_length() {
    let backend = load();
    let generated = generate(&backend, request(5, 3)).await;
    assert_eq!(generated.usage.finish_reason, FinishReason::Length, "{:?}", generated.text());
    assert_eq!(generated.usage.completion_tokens, 5);
    assert!((1..=5).contains(&generated.pieces.len()));
    assert_eq!(backend.stats().tokens_total, 5);
}

#[tokio::test]
async fn a_zero_budget_finishes_at_once_without_text() {
    let backend = load();
    let events: Vec<_> = backend.generate(request(0, 3)).await.unwrap().collect().await;
    let [Ok(GenerationEvent::Finished(usage))] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((usage.finish_reason, usage.completion_tokens), (FinishReason::Length, 0));
    assert!(usage.prompt_tokens > 60);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_expansion() {
    let backend = load();
    let first = generate(&backend, request(24, 7)).await.text();
    let again = generate(&backend, request(24, 7)).await.text();
    assert_eq!(first, again);
    assert!(!first.is_empty());
}

#[tokio::test]
async fn dropping_the_stream_ends_the_generation_thread_promptly() {
    let backend = load();
    let mut stream = backend.generate(request(2000, 4)).await.unwrap();
    for _ in 0..2 {
        let event = stream.next().await.unwrap().unwrap();
        assert!(matches!(event, GenerationEvent::Text(_)), "{event:?}");
    }
    assert_eq!(backend.stats().generating, 1);

    let dropped = Instant::now();
    drop(stream);
    let ended = eventually(Duration::from_secs(5), || async { backend.stats().generating == 0 }).await;
    let took = dropped.elapsed();
    eprintln!("the generation thread ended {took:?} after the stream was dropped");
    assert!(ended, "the generation thread still runs 5 s after the drop");
    assert!(took < Duration::from_secs(1), "ended {took:?} after the drop");
    let stats = backend.stats();
    assert_eq!((stats.cancelled_total, stats.completed_total), (1, 0), "it stopped because of the drop");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(backend.stats().tokens_total, stats.tokens_total, "no token after the thread ended");
    assert!(stats.tokens_total < 100, "stopped early: {} tokens", stats.tokens_total);
}

#[test]
fn a_file_that_is_not_a_gguf_model_is_refused_with_its_path() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"not a model").unwrap();
    let settings = LlamaSettings {
        model_path: file.path().into(),
        model_name: None,
        threads: Some(1),
        slots: 1,
        context_tokens: 1024,
        share_prefix: true,
    };
    let error = LlamaBackend::load(&settings).err().unwrap().to_string();
    assert!(error.contains("cannot load") && error.contains(&file.path().display().to_string()), "{error}");
}
