//! The simulated inference engine: a continuous-batching scheduler that paces tokens by the
//! profile.
//!
//! One task runs the loop: admit waiting sequences (FIFO) while fewer than `max_batch` run,
//! then take one decode step, which lasts `tpot(running)` plus the prefill of the sequences
//! admitted for it (only what follows a prompt's longest cached prefix, see
//! [`super::prefix_cache`]), and give every running sequence one token. Steps are scheduled on an
//! absolute clock so timer overshoot does not accumulate. A sequence whose receiver is dropped
//! leaves the batch at the next step: that is cancellation (one cancelled while still queued
//! counts as waiting until its turn comes, then is discarded without a step).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::prefix_cache::PrefixCache;
use super::profile::Profile;

/// How far the step clock may lag before it is reset (after a stall, do not race to catch up).
const MAX_LAG: Duration = Duration::from_millis(50);

/// Handle to a running simulated engine; clones share it. The scheduler stops when the last
/// handle is dropped and no sequence is left.
#[derive(Clone, Debug)]
pub struct Engine {
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<EngineStats>,
}

/// Live counters of an engine.
#[derive(Debug, Default)]
pub struct EngineStats {
    waiting: AtomicUsize,
    running: AtomicUsize,
    tokens: AtomicU64,
    prefilled: AtomicU64,
    prefix_cached: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub waiting: usize,
    pub running: usize,
    pub tokens_total: u64,
    /// Prompt tokens prefilled (of sequences admitted to the batch).
    pub prefilled_total: u64,
    /// Prompt tokens found in the prefix cache, not prefilled again.
    pub prefix_cached_total: u64,
    pub completed_total: u64,
    pub cancelled_total: u64,
}

impl EngineStats {
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            tokens_total: self.tokens.load(Ordering::Relaxed),
            prefilled_total: self.prefilled.load(Ordering::Relaxed),
            prefix_cached_total: self.prefix_cached.load(Ordering::Relaxed),
            completed_total: self.completed.load(Ordering::Relaxed),
            cancelled_total: self.cancelled.load(Ordering::Relaxed),
        }
    }
}

/// The tokens of one sequence: one `()` per generated token; closed after the last.
pub type TokenTicks = mpsc::UnboundedReceiver<()>;

/// A sequence's prompt as the engine sees it: its length and its prefix blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub tokens: u32,
    /// [`super::prefix_cache::prefix_blocks`] of the prompt's tokens.
    pub prefix: Vec<u64>,
}

impl Prompt {
    /// A prompt of `tokens` tokens that shares nothing with any other.
    pub fn unshared(tokens: u32) -> Self {
        Self { tokens, prefix: Vec::new() }
    }
}

#[derive(Debug)]
struct Job {
    prompt: Prompt,
    output_tokens: u32,
    ticks: mpsc::UnboundedSender<()>,
}

#[derive(Debug)]
struct Sequence {
    remaining: u32,
    ticks: mpsc::UnboundedSender<()>,
}

impl Engine {
    /// Starts the scheduler on the current Tokio runtime.
    pub fn start(profile: Profile) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(EngineStats::default());
        tokio::spawn(schedule(profile, receiver, Arc::clone(&stats)));
        Self { jobs, stats }
    }

    /// Queues a sequence that will generate `output_tokens` tokens after prefilling `prompt`
    /// (the part not in the prefix cache); dropping the returned receiver cancels it.
    pub fn submit(&self, prompt: Prompt, output_tokens: u32) -> TokenTicks {
        let (ticks, receiver) = mpsc::unbounded_channel();
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let job = Job { prompt, output_tokens, ticks };
        if self.jobs.send(job).is_err() {
            // The scheduler is gone (runtime shutting down); the closed receiver says so.
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        receiver
    }

    pub fn stats(&self) -> EngineSnapshot {
        self.stats.snapshot()
    }

    pub(crate) fn shared_stats(&self) -> Arc<EngineStats> {
        Arc::clone(&self.stats)
    }
}

async fn schedule(profile: Profile, mut jobs: mpsc::UnboundedReceiver<Job>, stats: Arc<EngineStats>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut running: Vec<Sequence> = Vec::new();
    let mut clock = Instant::now();
    let mut cache = PrefixCache::new(profile.prefix_cache_tokens);
    loop {
        if waiting.is_empty() && running.is_empty() {
            match jobs.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
            clock = Instant::now();
        }
        while let Ok(job) = jobs.try_recv() {
            waiting.push_back(job);
        }
        let prefill_tokens = admit(&mut waiting, &mut running, profile.max_batch, &mut cache, &stats);
        if running.is_empty() {
            continue;
        }
        clock += profile.tpot(running.len()) + profile.prefill(prefill_tokens);
        tokio::time::sleep_until(clock).await;
        if let Some(floor) = Instant::now().checked_sub(MAX_LAG) {
            clock = clock.max(floor);
        }
        emit_tokens(&mut running, &stats);
    }
}

/// Moves waiting sequences into the batch; returns the prompt tokens they need prefilled.
fn admit(
    waiting: &mut VecDeque<Job>,
    running: &mut Vec<Sequence>,
    max_batch: usize,
    cache: &mut PrefixCache,
    stats: &EngineStats,
) -> u64 {
    let mut prefill_tokens = 0;
    while running.len() < max_batch {
        let Some(job) = waiting.pop_front() else { break };
        stats.waiting.fetch_sub(1, Ordering::Relaxed);
        if job.ticks.is_closed() {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
        } else if job.output_tokens == 0 {
            stats.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            let cached = cache.admit(&job.prompt.prefix).min(u64::from(job.prompt.tokens));
            stats.prefix_cached.fetch_add(cached, Ordering::Relaxed);
            prefill_tokens += u64::from(job.prompt.tokens) - cached;
            running.push(Sequence { remaining: job.output_tokens, ticks: job.ticks });
        }
    }
    stats.running.store(running.len(), Ordering::Relaxed);
    stats.prefilled.fetch_add(prefill_tokens, Ordering::Relaxed);
    prefill_tokens
}

/// Gives every running sequence its token; drops finished and cancelled ones.
fn emit_tokens(running: &mut Vec<Sequence>, stats: &EngineStats) {
    running.retain_mut(|sequence| {
        if sequence.ticks.send(()).is_err() {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        stats.tokens.fetch_add(1, Ordering::Relaxed);
        sequence.remaining -= 1;
        if sequence.remaining == 0 {
            stats.completed.fetch_add(1, Ordering::Relaxed);
        }
        sequence.remaining > 0
    });
    stats.running.store(running.len(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::profile::TpotPoint;

    fn profile(table: &[(u32, f64)], max_batch: usize) -> Profile {
        Profile {
            name: "test".into(),
            model: "m".into(),
            prefill_tokens_per_second: 1e9,
            tpot: table.iter().map(|&(batch, ms)| TpotPoint { batch, ms }).collect(),
            max_batch,
            prefix_cache_tokens: 0,
        }
    }

    /// Mean time between the first and last token of one of `batch` sequences started together.
    async fn per_token_time(engine: &Engine, batch: usize, tokens: u32) -> Duration {
        let mut sequences: Vec<TokenTicks> =
            (0..batch).map(|_| engine.submit(Prompt::unshared(1), tokens)).collect();
        let mut measured = sequences.remove(0);
        for mut other in sequences {
            tokio::spawn(async move { while other.recv().await.is_some() {} });
        }
        measured.recv().await.unwrap();
        let start = Instant::now();
        let mut received = 1;
        while measured.recv().await.is_some() {
            received += 1;
        }
        assert_eq!(received, tokens);
        start.elapsed() / (tokens - 1)
    }

    #[tokio::test]
    async fn per_token_time_at_batch_8_over_batch_1_follows_the_profile() {
        let engine = Engine::start(profile(&[(1, 20.0), (8, 60.0)], 8));
        let one = per_token_time(&engine, 1, 25).await;
        let eight = per_token_time(&engine, 8, 25).await;
        // Sleeps never end early, so neither can beat the profile (1 ms for clock slack)...
        assert!(one >= Duration::from_millis(19), "batch 1: {one:?}");
        assert!(eight >= Duration::from_millis(59), "batch 8: {eight:?}");
        // ...and the ratio is the profile's 3.0, within generous bounds for a noisy machine.
        let ratio = eight.as_secs_f64() / one.as_secs_f64();
        assert!((2.2..3.8).contains(&ratio), "ratio {ratio:.2} ({one:?} vs {eight:?})");
        assert_eq!(engine.stats().tokens_total, 25 * 9);
    }

    #[tokio::test]
    async fn sequences_beyond_max_batch_wait_in_fifo_order() {
        let engine = Engine::start(profile(&[(1, 5.0)], 2));
        let mut first = engine.submit(Prompt::unshared(10), 4);
        let mut second = engine.submit(Prompt::unshared(10), 4);
        let mut third = engine.submit(Prompt::unshared(10), 4);
        first.recv().await.unwrap();
        let stats = engine.stats();
        assert_eq!((stats.running, stats.waiting), (2, 1));
        for sequence in [&mut first, &mut second, &mut third] {
            while sequence.recv().await.is_some() {}
        }
        let stats = engine.stats();
        assert_eq!((stats.completed_total, stats.tokens_total, stats.running), (3, 12, 0));
        assert_eq!(stats.prefilled_total, 30, "each admitted prompt is prefilled once");
    }

    #[tokio::test]
    async fn a_cached_prefix_is_not_prefilled_again() {
        let mut profile = profile(&[(1, 1.0)], 4);
        profile.prefix_cache_tokens = 1024;
        let engine = Engine::start(profile);
        let shared: Vec<u32> = (0..64).collect();
        let prompt = |last: u32| {
            let tokens: Vec<u32> = shared.iter().copied().chain([last; 8]).collect();
            Prompt { tokens: 72, prefix: crate::prefix_cache::prefix_blocks(&tokens) }
        };
        for last in [1000, 2000] {
            let mut sequence = engine.submit(prompt(last), 2);
            while sequence.recv().await.is_some() {}
        }
        let stats = engine.stats();
        assert_eq!((stats.prefix_cached_total, stats.prefilled_total), (64, 72 + 8), "the second prefills 8");
    }

    #[tokio::test]
    async fn dropping_the_receiver_takes_the_sequence_out_of_the_batch() {
        let engine = Engine::start(profile(&[(1, 5.0)], 4));
        let mut sequence = engine.submit(Prompt::unshared(1), 1000);
        sequence.recv().await.unwrap();
        sequence.recv().await.unwrap();
        drop(sequence);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let stats = engine.stats();
        assert_eq!((stats.running, stats.cancelled_total, stats.completed_total), (0, 1, 0));
        assert!(stats.tokens_total < 10, "generation went on: {stats:?}");
    }
}
