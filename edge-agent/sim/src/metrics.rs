//! The simulator's Prometheus metrics, read from the engine's live counters at scrape time.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, Opts};

use super::engine::EngineStats;

/// Exposes an engine's counters as `pice_sim_*` metrics labelled with the model.
pub struct EngineCollector {
    stats: Arc<EngineStats>,
    waiting: IntGauge,
    running: IntGauge,
    tokens: IntCounter,
    prefilled: IntCounter,
    prefix_cached: IntCounter,
    completed: IntCounter,
    cancelled: IntCounter,
    /// Serialises scrapes, so counters advance by exact deltas.
    scrape: Mutex<()>,
}

impl EngineCollector {
    pub fn new(stats: Arc<EngineStats>, model: &str) -> Result<Self, prometheus::Error> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("model", model);
        Ok(Self {
            stats,
            waiting: IntGauge::with_opts(opts(
                "pice_sim_requests_waiting",
                "Simulated requests queued beyond the max batch.",
            ))?,
            running: IntGauge::with_opts(opts(
                "pice_sim_requests_running",
                "Simulated requests in the decode batch.",
            ))?,
            tokens: IntCounter::with_opts(opts(
                "pice_sim_generated_tokens_total",
                "Simulated tokens generated.",
            ))?,
            prefilled: IntCounter::with_opts(opts(
                "pice_sim_prefilled_tokens_total",
                "Simulated prompt tokens prefilled.",
            ))?,
            prefix_cached: IntCounter::with_opts(opts(
                "pice_sim_prefix_cached_tokens_total",
                "Simulated prompt tokens found in the prefix cache and not prefilled again.",
            ))?,
            completed: IntCounter::with_opts(opts(
                "pice_sim_requests_completed_total",
                "Simulated requests that generated all their tokens.",
            ))?,
            cancelled: IntCounter::with_opts(opts(
                "pice_sim_requests_cancelled_total",
                "Simulated requests whose client went away before the end.",
            ))?,
            scrape: Mutex::new(()),
        })
    }

    fn refresh(&self) {
        let _scrape = self.scrape.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let snapshot = self.stats.snapshot();
        self.waiting.set(i64::try_from(snapshot.waiting).unwrap_or(i64::MAX));
        self.running.set(i64::try_from(snapshot.running).unwrap_or(i64::MAX));
        advance(&self.tokens, snapshot.tokens_total);
        advance(&self.prefilled, snapshot.prefilled_total);
        advance(&self.prefix_cached, snapshot.prefix_cached_total);
        advance(&self.completed, snapshot.completed_total);
        advance(&self.cancelled, snapshot.cancelled_total);
    }

    fn parts(&self) -> [&dyn Collector; 7] {
        [
            &self.waiting,
            &self.running,
            &self.tokens,
            &self.prefilled,
            &self.prefix_cached,
            &self.completed,
            &self.cancelled,
        ]
    }
}

fn advance(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|part| part.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.parts().into_iter().flat_map(|part| part.collect()).collect()
    }
}
