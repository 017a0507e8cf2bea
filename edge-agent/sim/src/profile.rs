//! The simulator's timing model: prefill rate, per-token decode time by batch size, max batch.

use std::time::Duration;

/// Decode time per step at one batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TpotPoint {
    /// Sequences decoding together.
    pub batch: u32,
    /// Milliseconds for one decode step (every sequence in the batch gets one token).
    pub ms: f64,
}

/// How a model server on some hardware spends its time.
///
/// A decode step with `b` running sequences takes [`Profile::tpot`]`(b)`; newly admitted
/// sequences add their prompt's prefill time to the step that admits them (a server that does
/// not chunk prefills stalls decoding meanwhile). Beyond `max_batch` requests wait in FIFO order.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The profile's name (see [`super::profiles`]).
    pub name: String,
    /// The model the profile describes; the simulator serves it under this name by default.
    pub model: String,
    pub prefill_tokens_per_second: f64,
    /// Decode step time by batch size, sorted by batch; linear in between, and beyond the last
    /// point extended along the last segment (constant if there is one point).
    pub tpot: Vec<TpotPoint>,
    /// Sequences decoding at once; more wait.
    pub max_batch: usize,
    /// Tokens of prompt prefixes the server keeps cached (its spare KV memory); 0: none.
    pub prefix_cache_tokens: u64,
}

impl Profile {
    /// Duration of one decode step with `batch` running sequences.
    pub fn tpot(&self, batch: usize) -> Duration {
        let batch = batch.max(1) as f64;
        let ms = match self.tpot.as_slice() {
            [] => 0.0,
            [only] => only.ms,
            points => interpolate(points, batch),
        };
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    /// Time to prefill `tokens` prompt tokens.
    pub fn prefill(&self, tokens: u64) -> Duration {
        if self.prefill_tokens_per_second <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(tokens as f64 / self.prefill_tokens_per_second)
    }

    /// Checks what the timing model relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.tpot.is_empty() || self.max_batch == 0 {
            return Err(format!("profile {}: needs tpot points and max_batch > 0", self.name));
        }
        let sorted = self.tpot.windows(2).all(|w| w[0].batch < w[1].batch);
        let positive = self.tpot.iter().all(|p| p.ms > 0.0 && p.batch > 0);
        if !sorted || !positive {
            return Err(format!(
                "profile {}: tpot points need increasing batch sizes and positive times",
                self.name
            ));
        }
        Ok(())
    }
}

fn interpolate(points: &[TpotPoint], batch: f64) -> f64 {
    let segment =
        points.windows(2).find(|w| batch <= f64::from(w[1].batch)).unwrap_or(&points[points.len() - 2..]);
    let (a, b) = (segment[0], segment[1]);
    if batch <= f64::from(a.batch) {
        return a.ms;
    }
    let slope = (b.ms - a.ms) / f64::from(b.batch - a.batch);
    a.ms + slope * (batch - f64::from(a.batch))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn profile(points: &[(u32, f64)]) -> Profile {
        Profile {
            name: "test".into(),
            model: "m".into(),
            prefill_tokens_per_second: 1000.0,
            tpot: points.iter().map(|&(batch, ms)| TpotPoint { batch, ms }).collect(),
            max_batch: 16,
            prefix_cache_tokens: 0,
        }
    }

    fn ms(d: Duration) -> f64 {
        (d.as_secs_f64() * 1e6).round() / 1e3
    }

    #[test]
    fn tpot_interpolates_between_points_and_holds_below_the_first() {
        let p = profile(&[(2, 10.0), (4, 14.0), (8, 30.0)]);
        assert_eq!(ms(p.tpot(1)), 10.0);
        assert_eq!(ms(p.tpot(3)), 12.0);
        assert_eq!(ms(p.tpot(6)), 22.0);
        assert_eq!(ms(p.tpot(8)), 30.0);
    }

    #[test]
    fn tpot_extends_the_last_segment_beyond_the_table() {
        let p = profile(&[(1, 10.0), (5, 18.0)]);
        assert_eq!(ms(p.tpot(9)), 26.0);
        assert_eq!(ms(profile(&[(1, 7.0)]).tpot(50)), 7.0);
    }

    #[test]
    fn prefill_time_follows_the_rate() {
        assert_eq!(profile(&[(1, 1.0)]).prefill(250), Duration::from_millis(250));
    }

    #[test]
    fn unsorted_or_empty_tables_are_rejected() {
        assert!(profile(&[(4, 1.0), (2, 2.0)]).validate().is_err());
        assert!(profile(&[]).validate().is_err());
        assert!(profile(&[(1, 1.0), (2, 2.0)]).validate().is_ok());
    }
}
