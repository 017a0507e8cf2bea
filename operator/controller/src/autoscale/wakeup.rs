//! Scale-from-zero: the gateways count requests that wanted the edge tier but found no replica
//! (`pice_gateway_edge_wakeup_requests_total`); an increase of that count since the last sync
//! wakes a pool's edge Deployments that stand at zero.
//!
//! The last count is kept per pool in memory only, so the first count after the operator starts
//! (or after the gateways' counters went down: a gateway restarted) is a baseline that wakes
//! nothing; requests counted before it are not seen.

use std::collections::HashMap;
use std::sync::Mutex;

/// What the gateways' count says since the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The count did not grow, or nothing of the pool can stand at zero.
    Quiet,
    /// The first count (operator start, gateway restart): a baseline, no wake-up.
    Baseline,
    /// The count could not be read: replicas neither wake nor drop to zero.
    Unknown,
    /// This many requests found no edge replica since the last sync.
    Requests(u64),
}

impl Wake {
    /// The requests that wake a Deployment running `current` replicas: only one at zero wakes.
    pub fn wakes(self, current: i32) -> Option<u64> {
        match self {
            Self::Requests(n) if current == 0 => Some(n),
            _ => None,
        }
    }

    /// Whether replicas may drop to zero: not while the count that would wake them is unknown.
    pub fn allows_zero(self) -> bool {
        self != Self::Unknown
    }
}

/// The last count read per pool (`namespace/name`).
#[derive(Debug, Default)]
pub struct WakeCounts(Mutex<HashMap<String, f64>>);

impl WakeCounts {
    /// Compares `counted` (the count summed over the pool's gateways, or why it is unknown) with
    /// the last count of `pool`, and remembers it.
    pub fn observe(&self, pool: &str, counted: Result<f64, String>) -> Wake {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let last = counts.get(pool).copied();
        let (wake, keep) = compare(last, counted);
        if let Some(keep) = keep {
            counts.insert(pool.to_string(), keep);
        }
        wake
    }

    /// Forgets the counts of pools for which `keep` says no.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|pool, _| keep(pool));
    }
}

/// The wake-up signal from the last and the new count, and the count to keep.
fn compare(last: Option<f64>, counted: Result<f64, String>) -> (Wake, Option<f64>) {
    let Ok(now) = counted else {
        return (Wake::Unknown, last);
    };
    let wake = match last {
        Some(last) if now > last => Wake::Requests((now - last).round() as u64),
        Some(last) if now == last => Wake::Quiet,
        _ => Wake::Baseline,
    };
    (wake, Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_compare_to_the_last_one_kept() {
        let unknown = || Err("gateway 127.0.0.1:8080: connection refused".to_string());
        let cases = [
            ("first count is a baseline", None, Ok(5.0), (Wake::Baseline, Some(5.0))),
            ("zero is a baseline too", None, Ok(0.0), (Wake::Baseline, Some(0.0))),
            ("no change is quiet", Some(5.0), Ok(5.0), (Wake::Quiet, Some(5.0))),
            ("an increase wakes", Some(5.0), Ok(8.0), (Wake::Requests(3), Some(8.0))),
            ("a drop (restart) is a new baseline", Some(5.0), Ok(1.0), (Wake::Baseline, Some(1.0))),
            ("unreadable keeps the last count", Some(5.0), unknown(), (Wake::Unknown, Some(5.0))),
            ("unreadable with none kept", None, unknown(), (Wake::Unknown, None)),
        ];
        for (what, last, counted, expect) in cases {
            assert_eq!(compare(last, counted), expect, "{what}");
        }
    }

    #[test]
    fn each_pool_keeps_its_own_count() {
        let counts = WakeCounts::default();
        assert_eq!(counts.observe("ns/a", Ok(2.0)), Wake::Baseline);
        assert_eq!(counts.observe("ns/b", Ok(7.0)), Wake::Baseline);
        assert_eq!(counts.observe("ns/a", Err("down".into())), Wake::Unknown);
        assert_eq!(counts.observe("ns/a", Ok(4.0)), Wake::Requests(2));
        assert_eq!(counts.observe("ns/b", Ok(7.0)), Wake::Quiet);
    }

    #[test]
    fn only_a_deployment_at_zero_wakes_and_an_unknown_count_keeps_it_above_zero() {
        assert_eq!(Wake::Requests(3).wakes(0), Some(3));
        assert_eq!(Wake::Requests(3).wakes(1), None);
        assert_eq!(Wake::Baseline.wakes(0), None);
        assert!(!Wake::Unknown.allows_zero());
        assert!(Wake::Quiet.allows_zero() && Wake::Baseline.allows_zero());
    }
}
