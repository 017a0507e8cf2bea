//! One generation on a blocking thread: decode the prompt, then sample, send and decode one token
//! at a time until the model stops, the budget runs out, or the reader drops the stream.
//!
//! Cancellation is checked between tokens: sending a piece fails once the receiver is gone, and
//! a token whose piece is empty (part of a character) checks the channel before the next decode.

use std::sync::atomic::Ordering;

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::text::Utf8Pieces;
use super::{Counters, Engine};
use pice_wire::generation::{BackendError, FinishReason, GenerationEvent, Sampling, Usage};
use pice_wire::stop::{Scanned, StopScanner};

// Sampling unless the client sets it: llama.cpp's own defaults (top-k 40, top-p 0.95, min-p 0.05,
// temperature 0.8), plus a mild repetition penalty over the last 64 tokens, which keeps
// 135M-class models out of loops. The client's temperature, top-p and presence and frequency
// penalties replace these; temperature 0 is greedy decoding.
const TOP_K: i32 = 40;
const TOP_P: f32 = 0.95;
const MIN_P: f32 = 0.05;
const TEMPERATURE: f32 = 0.8;
const PENALTY_LAST_N: i32 = 64;
const PENALTY_REPEAT: f32 = 1.1;
/// llama.cpp's "pick a random seed" value (`LLAMA_DEFAULT_SEED`).
const RANDOM_SEED: u32 = u32::MAX;

/// What a generation thread is given.
pub(super) struct Job {
    pub prompt: Vec<LlamaToken>,
    pub max_tokens: u32,
    pub want_logprobs: bool,
    pub seed: Option<u64>,
    pub sampling: Sampling,
    pub events: mpsc::Sender<Result<GenerationEvent, BackendError>>,
}

/// How a generation ended, when nothing failed.
enum Ended {
    Finished(Usage),
    Cancelled,
}

/// Runs `job` to its end on the calling (blocking) thread and counts how it ended.
pub(super) fn run(engine: &Engine, job: Job) {
    let _alive = Alive::enter(&engine.counters);
    match generate(engine, &job) {
        Ok(Ended::Finished(usage)) => {
            engine.counters.completed.fetch_add(1, Ordering::SeqCst);
            // The reader may have gone after the last piece; nothing is left to stop then.
            let _sent = job.events.blocking_send(Ok(GenerationEvent::Finished(usage)));
        }
        Ok(Ended::Cancelled) => {
            engine.counters.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        Err(error) => {
            let _sent = job.events.blocking_send(Err(error));
        }
    }
}

fn generate(engine: &Engine, job: &Job) -> Result<Ended, BackendError> {
    let prompt_tokens = u32::try_from(job.prompt.len()).unwrap_or(u32::MAX);
    let room = engine.model.n_ctx_train().saturating_sub(prompt_tokens);
    if job.prompt.is_empty() || room == 0 {
        return Err(BackendError::Model(format!(
            "the prompt has {prompt_tokens} tokens; the model's context holds {}",
            engine.model.n_ctx_train()
        )));
    }
    let budget = job.max_tokens.min(room);
    if budget == 0 {
        let usage = Usage {
            finish_reason: FinishReason::Length,
            prompt_tokens,
            completion_tokens: 0,
            mean_logprob: None,
        };
        return Ok(Ended::Finished(usage));
    }
    let mut context = engine.context(prompt_tokens + budget)?;
    let mut batch = LlamaBatch::new(job.prompt.len(), 1);
    batch.add_sequence(&job.prompt, 0, false).map_err(model_error)?;
    context.decode(&mut batch).map_err(model_error)?;

    let vocab = engine.model.vocab();
    let mut sampler = sampler(job.seed, &job.sampling, engine.model.n_vocab());
    let mut pieces = Utf8Pieces::default();
    let mut stops = StopScanner::new(&job.sampling.stop);
    let mut cut = false;
    let mut logprobs = 0.0;
    let mut completion_tokens = 0u32;
    let mut position = job.prompt.len();
    let finish_reason = loop {
        let last = batch.n_tokens() - 1;
        let token = sampler.sample(&context, last);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        if job.want_logprobs {
            logprobs += logprob(context.get_logits_ith(last), token);
        }
        completion_tokens += 1;
        engine.counters.tokens.fetch_add(1, Ordering::SeqCst);
        let (piece, stopped) = match stops.push(&pieces.push(&vocab.token_to_piece(token, false, None))) {
            Scanned::Text(piece) => (piece, false),
            Scanned::Stopped(piece) => (piece, true),
        };
        if !piece.is_empty() && job.events.blocking_send(Ok(GenerationEvent::Text(piece))).is_err() {
            return Ok(Ended::Cancelled);
        }
        if stopped {
            cut = true;
            break FinishReason::Stop;
        }
        if completion_tokens == budget {
            break FinishReason::Length;
        }
        if job.events.is_closed() {
            return Ok(Ended::Cancelled);
        }
        batch.clear();
        batch.add(token, i32::try_from(position).map_err(model_error)?, &[0], true).map_err(model_error)?;
        position += 1;
        context.decode(&mut batch).map_err(model_error)?;
    };
    let rest = match (cut, stops.push(&pieces.finish())) {
        (true, _) => String::new(),
        (false, Scanned::Text(text)) => text + &stops.finish(),
        (false, Scanned::Stopped(text)) => text,
    };
    if !rest.is_empty() && job.events.blocking_send(Ok(GenerationEvent::Text(rest))).is_err() {
        return Ok(Ended::Cancelled);
    }
    Ok(Ended::Finished(Usage {
        finish_reason,
        prompt_tokens,
        completion_tokens,
        mean_logprob: (job.want_logprobs && completion_tokens > 0)
            .then(|| logprobs / f64::from(completion_tokens)),
    }))
}

/// The sampler chain; a request's seed makes its text repeatable.
fn sampler(seed: Option<u64>, sampling: &Sampling, n_vocab: i32) -> LlamaSampler {
    // Fold the seed into u32 without landing on the "random" value.
    let seed = seed.map_or(RANDOM_SEED, |s| u32::try_from(s % u64::from(u32::MAX)).unwrap_or(0));
    let frequency = sampling.frequency_penalty.unwrap_or(0.0);
    let presence = sampling.presence_penalty.unwrap_or(0.0);
    let temperature = sampling.temperature.unwrap_or(TEMPERATURE);
    let penalties = LlamaSampler::penalties(n_vocab, PENALTY_LAST_N, PENALTY_REPEAT, frequency, presence);
    if temperature <= 0.0 {
        return LlamaSampler::chain_simple([penalties, LlamaSampler::greedy()]);
    }
    LlamaSampler::chain_simple([
        penalties,
        LlamaSampler::top_k(TOP_K),
        LlamaSampler::top_p(sampling.top_p.unwrap_or(TOP_P), 1),
        LlamaSampler::min_p(MIN_P, 1),
        LlamaSampler::temp(temperature),
        LlamaSampler::dist(seed),
    ])
}

/// The log-probability of `token` under the model's own distribution (softmax of the raw
/// logits, before temperature and truncation), as OpenAI-compatible servers report it.
fn logprob(logits: &[f32], token: LlamaToken) -> f64 {
    let Some(&chosen) = usize::try_from(token.0).ok().and_then(|i| logits.get(i)) else {
        return f64::NEG_INFINITY;
    };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    f64::from(chosen - max) - sum.ln()
}

fn model_error(error: impl std::fmt::Display) -> BackendError {
    BackendError::Model(format!("llama.cpp failed to generate: {error}"))
}

/// Counts a generation thread in `generating` while it runs, however it ends.
struct Alive<'a>(&'a Counters);

impl<'a> Alive<'a> {
    fn enter(counters: &'a Counters) -> Self {
        counters.generating.fetch_add(1, Ordering::SeqCst);
        Self(counters)
    }
}

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.generating.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_is_the_log_softmax_of_the_chosen_logit() {
        let logits = [1.0, 2.0, 3.0];
        let norm = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((logprob(&logits, LlamaToken(2)) - (3.0 - norm)).abs() < 1e-9);
        assert!((logprob(&logits, LlamaToken(0)) - (1.0 - norm)).abs() < 1e-9);
        let total: f64 = (0..3).map(|t| logprob(&logits, LlamaToken(t)).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_token_outside_the_vocabulary_has_no_probability() {
        assert_eq!(logprob(&[0.5, 0.5], LlamaToken(7)), f64::NEG_INFINITY);
        assert_eq!(logprob(&[0.5, 0.5], LlamaToken(-1)), f64::NEG_INFINITY);
    }
}
