//! One generation's sampling state: from each new row of logits, sample a token and turn it into
//! text, stopping at the model's end of generation, a stop sequence or the token budget. The
//! engine ([`super::engine`]) owns the decoding; this module only decides what a token means.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::Counters;
use super::text::Utf8Pieces;
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

/// A generation handed to the engine.
pub(super) struct Job {
    pub prompt: Vec<LlamaToken>,
    /// The answer the point belongs to ([`pice_wire::generation::ExpansionRequest::prefix_id`]).
    pub prefix_id: String,
    /// Tokens it may generate: the request's budget within the room the context leaves.
    pub budget: u32,
    pub want_logprobs: bool,
    pub seed: Option<u64>,
    pub sampling: Sampling,
    pub events: mpsc::Sender<Result<GenerationEvent, BackendError>>,
    /// Counts the job in `generating` until it is dropped, however it ends.
    pub _alive: Alive,
}

impl Job {
    fn prompt_tokens(&self) -> u32 {
        u32::try_from(self.prompt.len()).unwrap_or(u32::MAX)
    }

    /// The usage of a job with no budget, which ends before decoding anything.
    pub fn usage_without_budget(&self) -> Usage {
        Usage {
            finish_reason: FinishReason::Length,
            prompt_tokens: self.prompt_tokens(),
            completion_tokens: 0,
            mean_logprob: None,
        }
    }
}

/// What a sampled token means for its generation.
pub(super) enum Step {
    /// Send `text` (when not empty), then decode `token` and sample again.
    Continue { text: String, token: LlamaToken },
    /// Send `text` (when not empty), then the usage: the generation is over.
    Finished { text: String, usage: Usage },
}

/// The sampler chain and the text and statistics of one generation so far.
pub(super) struct Generation {
    sampler: LlamaSampler,
    pieces: Utf8Pieces,
    stops: StopScanner,
    want_logprobs: bool,
    logprobs: f64,
    prompt_tokens: u32,
    completion_tokens: u32,
    budget: u32,
}

impl Generation {
    pub fn new(job: &Job, n_vocab: i32) -> Self {
        Self {
            sampler: sampler(job.seed, &job.sampling, n_vocab),
            pieces: Utf8Pieces::default(),
            stops: StopScanner::new(&job.sampling.stop),
            want_logprobs: job.want_logprobs,
            logprobs: 0.0,
            prompt_tokens: job.prompt_tokens(),
            completion_tokens: 0,
            budget: job.budget,
        }
    }

    /// Samples the token after the batch row `row` of the last decode and counts it.
    pub fn sample(
        &mut self,
        context: &LlamaContext<'_>,
        row: i32,
        model: &LlamaModel,
        counters: &Counters,
    ) -> Step {
        let token = self.sampler.sample(context, row);
        let vocab = model.vocab();
        if vocab.is_eog(token) {
            return self.finish(String::new(), FinishReason::Stop, false);
        }
        if self.want_logprobs {
            self.logprobs += logprob(context.get_logits_ith(row), token);
        }
        self.completion_tokens += 1;
        counters.tokens.fetch_add(1, Ordering::SeqCst);
        match self.stops.push(&self.pieces.push(&vocab.token_to_piece(token, false, None))) {
            Scanned::Stopped(text) => self.finish(text, FinishReason::Stop, true),
            Scanned::Text(text) if self.completion_tokens >= self.budget => {
                self.finish(text, FinishReason::Length, false)
            }
            Scanned::Text(text) => Step::Continue { text, token },
        }
    }

    /// Ends the generation: `text` plus whatever the UTF-8 and stop scanners held back, unless a
    /// stop sequence `cut` the text.
    fn finish(&mut self, mut text: String, finish_reason: FinishReason, cut: bool) -> Step {
        if !cut {
            match self.stops.push(&self.pieces.finish()) {
                Scanned::Text(rest) => {
                    text.push_str(&rest);
                    text.push_str(&self.stops.finish());
                }
                Scanned::Stopped(rest) => text.push_str(&rest),
            }
        }
        let completion_tokens = self.completion_tokens;
        let usage = Usage {
            finish_reason,
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            mean_logprob: (self.want_logprobs && completion_tokens > 0)
                .then(|| self.logprobs / f64::from(completion_tokens)),
        };
        Step::Finished { text, usage }
    }
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

/// Counts a generation in `generating` from its submission until it is dropped.
pub(super) struct Alive(Arc<Counters>);

impl Alive {
    pub fn enter(counters: &Arc<Counters>) -> Self {
        counters.generating.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counters))
    }
}

impl Drop for Alive {
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
