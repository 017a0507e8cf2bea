//! Live latency and size estimates: exponentially weighted moving averages (EWMA) of what the
//! cloud LLM and the edge replicas actually did, fed by every generation the gateway times.
//!
//! Each estimate starts from a prior and the first samples replace it quickly (the weight of a
//! new sample is `max(ALPHA, 1 / samples)`), so a fresh gateway stops guessing after a handful
//! of requests and then follows load changes with a horizon of about `1 / ALPHA` samples.

use std::time::{Duration, Instant};

/// Weight of a new sample once warmed up.
const ALPHA: f64 = 0.2;

/// One exponentially weighted moving average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ewma {
    value: f64,
    samples: u32,
}

impl Ewma {
    /// An average that reads `prior` until the first sample.
    pub const fn new(prior: f64) -> Self {
        Self { value: prior, samples: 0 }
    }

    /// Folds in a sample; non-finite or negative samples are ignored.
    pub fn observe(&mut self, sample: f64) {
        if !sample.is_finite() || sample < 0.0 {
            return;
        }
        self.samples = self.samples.saturating_add(1);
        let weight = ALPHA.max(1.0 / f64::from(self.samples));
        self.value += weight * (sample - self.value);
    }

    pub fn get(&self) -> f64 {
        self.value
    }

    /// Whether a sample has replaced the prior.
    pub fn measured(&self) -> bool {
        self.samples > 0
    }
}

/// How one generation went: time to the first token and per-token decode time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// From sending the request to the first text.
    pub ttft: Duration,
    /// Seconds per generated token after the first, when more than one arrived.
    pub tpot: Option<f64>,
    /// Tokens generated.
    pub tokens: u32,
}

/// Times a generation as its text arrives.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    started: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Stopwatch {
    pub fn start() -> Self {
        Self { started: Instant::now(), first: None, last: None }
    }

    /// Notes that text arrived now.
    pub fn text(&mut self) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// Whether any text arrived yet.
    pub fn has_text(&self) -> bool {
        self.first.is_some()
    }

    /// The timing of a generation that produced `tokens` tokens.
    pub fn finish(&self, tokens: u32) -> Timing {
        let first = self.first.unwrap_or_else(Instant::now);
        let decode = self.last.map_or(Duration::ZERO, |last| last.duration_since(first));
        let tpot = (tokens > 1).then(|| decode.as_secs_f64() / f64::from(tokens - 1));
        Timing { ttft: first.duration_since(self.started), tpot, tokens }
    }
}

/// What the gateway has learned about the cloud LLM and the shape of answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CloudEstimates {
    /// Queue wait plus prefill: seconds to the first token.
    pub ttft: Ewma,
    /// Seconds per output token at the cloud's current batch.
    pub tpot: Ewma,
    /// The lowest `tpot` average seen: the unloaded cloud, for spotting saturation.
    pub best_tpot: f64,
    /// Output tokens of a cloud-only answer.
    pub answer_tokens: Ewma,
    /// Output tokens of a sketch.
    pub sketch_tokens: Ewma,
    /// Points in a parsed sketch.
    pub points: Ewma,
    /// Tokens an expansion adds beyond the words of its point.
    pub expansion_extra_tokens: Ewma,
}

impl CloudEstimates {
    /// Priors for a pool whose sketches have at most `max_points` points of `words_per_point`.
    pub fn new(max_points: u32, words_per_point: u32) -> Self {
        let points = f64::from(max_points.max(1));
        Self {
            ttft: Ewma::new(0.3),
            tpot: Ewma::new(0.03),
            best_tpot: f64::INFINITY,
            answer_tokens: Ewma::new(256.0),
            sketch_tokens: Ewma::new(points * f64::from(words_per_point + 2)),
            points: Ewma::new(points),
            expansion_extra_tokens: Ewma::new(30.0),
        }
    }

    /// Folds in a cloud generation.
    pub fn observe(&mut self, timing: &Timing) {
        self.ttft.observe(timing.ttft.as_secs_f64());
        if let Some(tpot) = timing.tpot {
            self.tpot.observe(tpot);
            self.best_tpot = self.best_tpot.min(self.tpot.get());
        }
    }

    /// How much slower the cloud decodes now than at its best (1 = unloaded).
    pub fn slowdown(&self) -> f64 {
        if self.best_tpot.is_finite() && self.best_tpot > 0.0 {
            self.tpot.get() / self.best_tpot
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sample_replaces_the_prior_and_later_ones_move_it_by_alpha() {
        let mut average = Ewma::new(100.0);
        average.observe(10.0);
        assert_eq!(average.get(), 10.0);
        average.observe(20.0);
        assert_eq!(average.get(), 15.0);
        for _ in 0..3 {
            average.observe(15.0);
        }
        average.observe(65.0);
        assert!((average.get() - 25.0).abs() < 1e-9, "{}", average.get());
    }

    #[test]
    fn nonsense_samples_are_ignored() {
        let mut average = Ewma::new(1.0);
        average.observe(f64::NAN);
        average.observe(-3.0);
        assert_eq!(average.get(), 1.0);
    }

    #[test]
    fn a_stopwatch_without_a_second_token_has_no_tpot() {
        let mut watch = Stopwatch::start();
        assert!(!watch.has_text());
        watch.text();
        assert_eq!(watch.finish(1).tpot, None);
        assert!(watch.finish(3).tpot.is_some_and(|t| t >= 0.0));
    }

    #[test]
    fn slowdown_compares_the_current_tpot_with_the_best_seen() {
        let mut cloud = CloudEstimates::new(4, 8);
        assert_eq!(cloud.slowdown(), 1.0);
        let timing = |tpot| Timing { ttft: Duration::from_millis(100), tpot: Some(tpot), tokens: 10 };
        cloud.observe(&timing(0.01));
        for _ in 0..20 {
            cloud.observe(&timing(0.04));
        }
        assert!(cloud.slowdown() > 3.0, "{}", cloud.slowdown());
    }
}
