//! The llama backend's one batched context on SmolLM2-135M-Instruct (PICE_MODEL_PATH, as in
//! `llama_backend.rs`): the points of one answer generate together, their shared prompt prefix
//! decoded once; without prefix sharing nothing is copied; a dropped stream frees its sequence
//! for waiting jobs; greedy text does not depend on what else is in the batch.
#![cfg(feature = "llama")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::eventually;
use common::llama::{Generated, generate, model_path};
use futures::StreamExt;
use futures::future::join_all;
use pice_edge_agent::llama::{LlamaBackend, LlamaSettings};
use pice_wire::generation::{ExpansionRequest, GenerationEvent, ModelBackend, Sampling};
use prometheus::Registry;

/// Prompt tokens after the shared prefix, at most: "Expand only point N: <point>" and the chat
/// template's end of turn.
const OWN_SUFFIX_TOKENS: u64 = 40;

fn load(slots: u32, share_prefix: bool) -> LlamaBackend {
    let settings = LlamaSettings {
        model_path: model_path(),
        model_name: None,
        threads: Some(1),
        slots,
        context_tokens: 4096,
        share_prefix,
    };
    LlamaBackend::load(&settings).unwrap()
}

/// Point `point_index` of an eight-point answer.
fn point(point_index: usize, max_tokens: u32) -> ExpansionRequest {
    ExpansionRequest {
        question: "How can a city cut its traffic emissions?".into(),
        sketch: [
            "Expand bus and tram networks with frequent service",
            "Build protected bike lanes across the centre",
            "Charge a congestion fee for central streets",
            "Electrify the municipal vehicle fleet",
            "Make parking scarcer and pricier downtown",
            "Allow denser housing near stations",
            "Synchronise traffic lights to smooth flow",
            "Support remote work and flexible hours",
        ]
        .map(String::from)
        .to_vec(),
        point_index,
        max_tokens,
        seed: Some(u64::try_from(point_index).unwrap() + 1),
        prefix_id: "answer-1".into(),
        ..ExpansionRequest::default()
    }
}

async fn all_points(backend: &LlamaBackend, max_tokens: u32) -> Vec<Generated> {
    join_all((0..8).map(|index| generate(backend, point(index, max_tokens)))).await
}

#[tokio::test]
async fn the_points_of_one_answer_generate_together_and_share_their_prefix() {
    let backend = load(8, true);
    let registry = Registry::new();
    backend.register_metrics(&registry).unwrap();
    let points = all_points(&backend, 32).await;

    let first_end = points.iter().map(|p| p.finished).min().unwrap();
    for (index, generated) in points.iter().enumerate() {
        eprintln!("point {index}: {:?} {:?}", generated.text(), generated.usage);
        assert!(!generated.text().trim().is_empty(), "point {index} has text");
        assert!(generated.first_piece < first_end, "point {index} started before any point ended: one batch");
    }
    let shortest_prompt = points.iter().map(|p| u64::from(p.usage.prompt_tokens)).min().unwrap();
    let stats = backend.stats();
    eprintln!("shortest prompt {shortest_prompt} tokens, {stats:?}");
    assert!(
        stats.prefix_reused_tokens_total >= 7 * (shortest_prompt - OWN_SUFFIX_TOKENS),
        "seven points took the shared prefix from the first: {stats:?}"
    );
    assert_eq!(stats.completed_total, 8);
    assert!(eventually(Duration::from_secs(5), || async { backend.stats().generating == 0 }).await);
    let exported = registry.gather();
    let counter = exported.iter().find(|f| f.name() == "pice_edge_prefix_reused_tokens_total").unwrap();
    assert_eq!(counter.get_metric()[0].get_counter().get_value(), stats.prefix_reused_tokens_total as f64);
}

#[tokio::test]
async fn without_prefix_sharing_every_prompt_is_decoded_whole() {
    let backend = load(8, false);
    let points = all_points(&backend, 16).await;
    assert!(points.iter().all(|p| !p.text().trim().is_empty() && p.usage.completion_tokens > 0));
    let stats = backend.stats();
    assert_eq!((stats.prefix_reused_tokens_total, stats.completed_total), (0, 8), "{stats:?}");
}

#[tokio::test]
async fn a_dropped_stream_frees_its_sequence_for_the_jobs_waiting() {
    let backend = load(2, true);
    let mut endless = Vec::new();
    for index in 0..2 {
        let mut stream = backend.generate(point(index, 2000)).await.unwrap();
        let event = stream.next().await.unwrap().unwrap();
        assert!(matches!(event, GenerationEvent::Text(_)), "{event:?}");
        endless.push(stream);
    }
    // Four more jobs than sequences: they wait until the two endless ones are dropped.
    let waiting = tokio::spawn({
        let backend = backend.clone();
        async move { join_all((2..6).map(|index| generate(&backend, point(index, 12)))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backend.stats().completed_total, 0, "both sequences are taken");
    drop(endless);

    let finished = tokio::time::timeout(Duration::from_secs(120), waiting).await.unwrap().unwrap();
    assert!(finished.iter().all(|p| p.usage.completion_tokens > 0));
    let stats = backend.stats();
    assert_eq!((stats.cancelled_total, stats.completed_total), (2, 4), "{stats:?}");
    assert!(eventually(Duration::from_secs(5), || async { backend.stats().generating == 0 }).await);
}

/// Greedy pieces (one per token here: the text is ASCII) that must agree alone and batched.
///
/// The text is not identical to the end: llama.cpp's CPU kernels round differently for a
/// different number of rows in a batch, so a prompt decoded in one piece, or in two after a
/// copied prefix, or beside other sequences, gets slightly different logits, and a 135M model's
/// top two tokens are sometimes close enough to swap. Measured with one thread on SmolLM2-135M
/// Q4_1, 48 tokens, against the point decoded alone: second in a shared-prefix batch (this
/// test), the first 14 tokens agree; first in that batch, all 48; without prefix sharing, 41
/// (second) and 18 (first); after a copied prefix in a batch of one, 14. Turning flash attention
/// off does not make them agree either (23, 18, 18, 18). Both texts stay fluent and on the point.
const GREEDY_AGREEMENT: usize = 8;

#[tokio::test]
async fn greedy_text_agrees_alone_and_in_a_batch() {
    let greedy = |index| ExpansionRequest {
        sampling: Sampling { temperature: Some(0.0), ..Sampling::default() },
        ..point(index, 48)
    };
    let alone = generate(&load(4, true), greedy(2)).await;
    let again = generate(&load(4, true), greedy(2)).await;
    assert_eq!(alone.text(), again.text(), "greedy decoding alone is repeatable");

    let backend = load(4, true);
    // Point 2 starts second: it takes the prefix point 0 decoded and decodes only its own end,
    // in a batch with the other points.
    let batched = join_all([0, 2, 5, 7].map(|index| generate(&backend, greedy(index)))).await;
    assert!(backend.stats().prefix_reused_tokens_total > 0, "the batch shared its prefix");
    let batched = &batched[1];
    let same = alone.pieces.iter().zip(&batched.pieces).take_while(|(a, b)| a == b).count();
    eprintln!(
        "alone: {:?}\nbatched: {:?}\nthe first {same} of {} pieces match",
        alone.text(),
        batched.text(),
        alone.pieces.len()
    );
    assert!(same >= GREEDY_AGREEMENT, "only the first {same} pieces agree");
    assert_eq!(alone.usage.prompt_tokens, batched.usage.prompt_tokens);
}
