//! Recent generation speed: tokens per second over a sliding window of one-second buckets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Seconds the rate averages over.
const WINDOW_SECS: u64 = 10;

/// Counts tokens into per-second buckets and reports the recent rate.
#[derive(Debug)]
pub struct TokenRate {
    started: Instant,
    /// (second since `started`, tokens in it), oldest first.
    buckets: Mutex<VecDeque<(u64, u64)>>,
}

impl Default for TokenRate {
    fn default() -> Self {
        Self { started: Instant::now(), buckets: Mutex::new(VecDeque::new()) }
    }
}

impl TokenRate {
    pub fn add(&self, tokens: u64) {
        self.add_at(self.started.elapsed(), tokens);
    }

    /// Tokens per second over the last nine to ten seconds (or since start, if younger).
    pub fn per_second(&self) -> f64 {
        self.per_second_at(self.started.elapsed())
    }

    fn add_at(&self, elapsed: Duration, tokens: u64) {
        let second = elapsed.as_secs();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match buckets.back_mut() {
            Some((last, count)) if *last == second => *count += tokens,
            _ => buckets.push_back((second, tokens)),
        }
        while buckets.front().is_some_and(|&(s, _)| s + WINDOW_SECS <= second) {
            buckets.pop_front();
        }
    }

    fn per_second_at(&self, elapsed: Duration) -> f64 {
        let second = elapsed.as_secs();
        let buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tokens: u64 = buckets.iter().filter(|&&(s, _)| s + WINDOW_SECS > second).map(|&(_, n)| n).sum();
        // The buckets counted start at `oldest`; the newest one is still filling.
        let oldest = second.saturating_sub(WINDOW_SECS - 1);
        let span = (elapsed.as_secs_f64() - oldest as f64).max(1.0);
        tokens as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn the_rate_averages_over_the_window() {
        let rate = TokenRate::default();
        for second in 0..10 {
            rate.add_at(at(f64::from(second) + 0.5), 50);
        }
        assert!((rate.per_second_at(at(10.0)) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn old_tokens_leave_the_window() {
        let rate = TokenRate::default();
        rate.add_at(at(0.5), 1000);
        rate.add_at(at(12.5), 27);
        assert!((rate.per_second_at(at(13.0)) - 3.0).abs() < 1e-9);
        assert_eq!(rate.per_second_at(at(40.0)), 0.0);
    }

    #[test]
    fn a_young_agent_divides_by_its_age_but_at_least_one_second() {
        let rate = TokenRate::default();
        rate.add_at(at(0.2), 40);
        assert!((rate.per_second_at(at(0.5)) - 40.0).abs() < 1e-9);
        rate.add_at(at(3.5), 40);
        assert!((rate.per_second_at(at(4.0)) - 20.0).abs() < 1e-9);
    }
}
