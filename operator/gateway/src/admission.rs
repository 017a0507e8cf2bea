//! Admission under load (docs/design.md, "No silent shrinking"): a request that would go
//! progressive goes so only when the edge is estimated to expand its points within the point
//! deadline, with their full budgets. Otherwise it goes cloud-only, unless the cloud too is
//! estimated to take longer than the pool's `admission.maxLatencyMs`: then it is refused with
//! 429 and a `Retry-After` of the estimated excess, rather than answered late or cut short.

use super::mode::LatencyInputs;

/// Seconds a `Retry-After` says at least and at most.
const RETRY_AFTER_SECONDS: (f64, f64) = (1.0, 60.0);

/// What admission decided for a request that would go progressive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    /// The edge expands the points within the deadline: progressive with full budgets.
    Progressive,
    /// The edge would miss the deadline and the cloud is within the latency limit.
    Cloud,
    /// Both tiers are past what the pool takes on; try again after this many seconds.
    Rejected { retry_after_seconds: u64 },
}

impl Admission {
    /// The `outcome` label of `pice_gateway_admission_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressive => "progressive",
            Self::Cloud => "cloud",
            Self::Rejected { .. } => "rejected",
        }
    }
}

/// Admits a request from the live estimates: `deadline` is the point deadline and
/// `max_latency` the pool's limit, both in seconds.
pub fn admit(inputs: &LatencyInputs, deadline: f64, max_latency: f64) -> Admission {
    let within = |latency: f64| latency <= max_latency;
    let edge_in_time = inputs.edge_makespan.is_some_and(|makespan| makespan <= deadline);
    match inputs.progressive() {
        Some(progressive) if edge_in_time && within(progressive) => return Admission::Progressive,
        _ => {}
    }
    let cloud = inputs.cloud_only();
    if within(cloud) {
        return Admission::Cloud;
    }
    let best = inputs.progressive().filter(|_| edge_in_time).map_or(cloud, |p| p.min(cloud));
    let wait = (best - max_latency).clamp(RETRY_AFTER_SECONDS.0, RETRY_AFTER_SECONDS.1);
    Admission::Rejected { retry_after_seconds: wait.ceil() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloud at `cloud_tpot` s a token (300-token answers, 40-token sketches, 0.2 s to the
    /// first token) and an edge whose points all end after `makespan` s.
    fn inputs(cloud_tpot: f64, makespan: Option<f64>) -> LatencyInputs {
        LatencyInputs {
            cloud_ttft: 0.2,
            cloud_tpot,
            answer_tokens: 300.0,
            sketch_tokens: 40.0,
            edge_makespan: makespan,
        }
    }

    #[test]
    fn an_edge_within_the_deadline_takes_the_request_with_full_budgets() {
        assert_eq!(admit(&inputs(0.03, Some(3.0)), 4.0, 60.0), Admission::Progressive);
    }

    #[test]
    fn an_edge_that_would_miss_the_deadline_sends_the_request_to_the_cloud() {
        assert_eq!(admit(&inputs(0.03, Some(6.0)), 4.0, 60.0), Admission::Cloud);
        assert_eq!(admit(&inputs(0.03, None), 4.0, 60.0), Admission::Cloud, "no edge at all");
    }

    #[test]
    fn past_both_tiers_the_request_is_refused_with_the_estimated_excess_as_retry_after() {
        // T_cloud = 0.2 + 300 * 0.3 = 90.2 s against a 60 s limit: 31 s to wait.
        let admission = admit(&inputs(0.3, Some(6.0)), 4.0, 60.0);
        assert_eq!(admission, Admission::Rejected { retry_after_seconds: 31 });
        let admission = admit(&inputs(3.0, None), 4.0, 60.0);
        assert_eq!(admission, Admission::Rejected { retry_after_seconds: 60 }, "capped at a minute");
    }

    #[test]
    fn a_slow_cloud_still_admits_progressive_when_its_sketch_fits_the_limit() {
        // T_prog = 0.2 + 40 * 0.3 + 3 = 15.2 s, T_cloud = 90.2 s.
        assert_eq!(admit(&inputs(0.3, Some(3.0)), 4.0, 60.0), Admission::Progressive);
    }
}
