//! Summaries of one load level: throughput, latency percentiles, time to first token, answer
//! length, mode shares and the reasons behind the modes; and the median of repeated runs.

use std::collections::BTreeMap;

use super::load::Outcome;

/// What one load level measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub sent: usize,
    pub completed: usize,
    /// Requests completed per second between the first and the last completion: the offered
    /// rate below saturation (completions follow arrivals), the capacity above (the servers
    /// work flat out from the first completion to the last), whatever the latency.
    pub throughput: f64,
    /// Latency percentiles in seconds; unfinished requests count as infinitely slow.
    pub p50: f64,
    pub p90: f64,
    pub ttft_p50: f64,
    /// Tokens the client received per completed request.
    pub answer_tokens: f64,
    /// Share of completed requests answered progressively.
    pub progressive_share: f64,
    /// Share of completed requests per `mode/reason` (e.g. `cloud/unsuitable`).
    pub reasons: BTreeMap<String, f64>,
    /// Tokens the cloud server generated (its own counter) per completed request.
    pub cloud_tokens: f64,
    /// Prompt tokens the cloud server prefilled (its own counter) per completed request.
    pub cloud_prefill: f64,
    /// Tokens the edge generated per completed request.
    pub edge_tokens: f64,
    /// Prompt tokens of finished edge expansions (the agents' counters) per completed request.
    pub edge_prefill: f64,
    /// Of those, tokens the simulated edge devices prefilled (not found in their prefix cache).
    pub edge_prefilled: f64,
    /// Requests refused with 429 (admission).
    pub rejected: usize,
}

/// What the servers counted over one level, as totals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerWork {
    /// Tokens the cloud server generated.
    pub cloud_tokens: f64,
    /// Prompt tokens the cloud server prefilled.
    pub cloud_prefill: f64,
    /// Prompt tokens of the expansions the edge agents finished.
    pub edge_prefill: f64,
    /// Prompt tokens the simulated edge devices prefilled (the rest hit their prefix cache).
    pub edge_prefilled: f64,
}

/// The `q` quantile (0–1, nearest rank) of `values`; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Summarises `outcomes` of a level and what the servers did during it.
pub fn summarize(outcomes: &[Outcome], work: ServerWork) -> Summary {
    let done: Vec<&Outcome> = outcomes.iter().filter(|o| o.latency.is_some()).collect();
    let latencies: Vec<f64> = outcomes.iter().map(|o| o.latency.unwrap_or(f64::INFINITY)).collect();
    let ttfts: Vec<f64> = outcomes.iter().map(|o| o.ttft.unwrap_or(f64::INFINITY)).collect();
    let per_done = |total: f64| if done.is_empty() { f64::NAN } else { total / done.len() as f64 };
    let progressive = done.iter().filter(|o| o.mode.as_deref() == Some("progressive")).count();
    Summary {
        sent: outcomes.len(),
        completed: done.len(),
        throughput: completion_rate(outcomes),
        p50: quantile(&latencies, 0.5),
        p90: quantile(&latencies, 0.9),
        ttft_p50: quantile(&ttfts, 0.5),
        answer_tokens: per_done(done.iter().map(|o| o.completion_tokens as f64).sum()),
        progressive_share: per_done(progressive as f64),
        reasons: reason_shares(&done),
        cloud_tokens: per_done(work.cloud_tokens),
        cloud_prefill: per_done(work.cloud_prefill),
        edge_tokens: per_done(done.iter().map(|o| o.edge_tokens as f64).sum()),
        edge_prefill: per_done(work.edge_prefill),
        edge_prefilled: per_done(work.edge_prefilled),
        rejected: outcomes.iter().filter(|o| o.rejected).count(),
    }
}

/// Completions per second from the first completion to the last; 0 with fewer than two.
fn completion_rate(outcomes: &[Outcome]) -> f64 {
    let finishes: Vec<f64> = outcomes.iter().filter_map(Outcome::finished_at).collect();
    let first = finishes.iter().copied().fold(f64::INFINITY, f64::min);
    let last = finishes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if finishes.len() < 2 || last <= first {
        return 0.0;
    }
    (finishes.len() - 1) as f64 / (last - first)
}

fn reason_shares(done: &[&Outcome]) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for outcome in done {
        let mode = outcome.mode.as_deref().unwrap_or("unknown");
        let reason = outcome.reason.as_deref().unwrap_or("unknown");
        *counts.entry(format!("{mode}/{reason}")).or_insert(0.0) += 1.0;
    }
    counts.values_mut().for_each(|count| *count /= done.len() as f64);
    counts
}

/// Field-by-field medians of repeated runs of one level.
pub fn median(runs: &[Summary]) -> Summary {
    let m = |field: fn(&Summary) -> f64| quantile(&runs.iter().map(field).collect::<Vec<_>>(), 0.5);
    Summary {
        sent: m(|s| s.sent as f64) as usize,
        completed: m(|s| s.completed as f64) as usize,
        throughput: m(|s| s.throughput),
        p50: m(|s| s.p50),
        p90: m(|s| s.p90),
        ttft_p50: m(|s| s.ttft_p50),
        answer_tokens: m(|s| s.answer_tokens),
        progressive_share: m(|s| s.progressive_share),
        reasons: median_shares(runs),
        cloud_tokens: m(|s| s.cloud_tokens),
        cloud_prefill: m(|s| s.cloud_prefill),
        edge_tokens: m(|s| s.edge_tokens),
        edge_prefill: m(|s| s.edge_prefill),
        edge_prefilled: m(|s| s.edge_prefilled),
        rejected: m(|s| s.rejected as f64) as usize,
    }
}

/// Per-key medians of the runs' reason shares (a key a run lacks counts as 0 there).
fn median_shares(runs: &[Summary]) -> BTreeMap<String, f64> {
    let keys: std::collections::BTreeSet<&String> = runs.iter().flat_map(|s| s.reasons.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let shares: Vec<f64> = runs.iter().map(|s| s.reasons.get(key).copied().unwrap_or(0.0)).collect();
            (key.clone(), quantile(&shares, 0.5))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(latency: f64, mode: &str) -> Outcome {
        Outcome {
            sent_at: 1.0,
            latency: Some(latency),
            ttft: Some(latency / 10.0),
            mode: Some(mode.into()),
            reason: Some("requested".into()),
            completion_tokens: 100,
            edge_tokens: 40,
            rejected: false,
        }
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&values, 0.5), 3.0);
        assert_eq!(quantile(&values, 0.9), 5.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn unfinished_and_refused_requests_push_the_tail_up_and_count_for_nothing_else() {
        let mut outcomes = vec![done(1.0, "progressive"), done(2.0, "cloud"), done(3.0, "progressive")];
        outcomes.push(Outcome::default());
        outcomes.push(Outcome { rejected: true, ..Outcome::default() });
        let work = ServerWork {
            cloud_tokens: 600.0,
            cloud_prefill: 90.0,
            edge_prefill: 1500.0,
            edge_prefilled: 600.0,
        };
        let summary = summarize(&outcomes, work);
        assert_eq!((summary.sent, summary.completed, summary.rejected), (5, 3, 1));
        assert_eq!((summary.throughput, summary.edge_tokens), (1.0, 40.0));
        assert_eq!(summary.p90, f64::INFINITY);
        assert_eq!((summary.cloud_tokens, summary.cloud_prefill, summary.edge_prefill), (200.0, 30.0, 500.0));
        assert_eq!(summary.edge_prefilled, 200.0);
        assert!((summary.progressive_share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(summary.reasons.len(), 2);
        assert!((summary.reasons["cloud/requested"] - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn throughput_is_the_completion_rate_whatever_the_latency() {
        // Sent every 0.5 s, each taking 10 s: five completions over 2 s, 2 per second.
        let outcomes: Vec<Outcome> =
            (0..5).map(|i| Outcome { sent_at: f64::from(i) * 0.5, ..done(10.0, "cloud") }).collect();
        assert!((summarize(&outcomes, ServerWork::default()).throughput - 2.0).abs() < 1e-9);
        assert_eq!(summarize(&outcomes[..1], ServerWork::default()).throughput, 0.0);
    }

    #[test]
    fn the_median_of_runs_is_taken_field_by_field() {
        let runs = [1.0, 9.0, 4.0].map(|p50| Summary { p50, throughput: 10.0 - p50, ..Summary::default() });
        let median = median(&runs);
        assert_eq!((median.p50, median.throughput), (4.0, 6.0));
    }

    #[test]
    fn reason_shares_take_the_median_per_reason_with_absent_as_zero() {
        let run = |pairs: &[(&str, f64)]| Summary {
            reasons: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Summary::default()
        };
        let runs = [run(&[("a", 1.0)]), run(&[("a", 0.5), ("b", 0.5)]), run(&[("a", 0.8), ("b", 0.2)])];
        let median = median(&runs);
        assert_eq!((median.reasons["a"], median.reasons["b"]), (0.8, 0.2));
    }
}
