//! The agent's Prometheus metrics, registered in a registry the caller passes in and labelled
//! only by model.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};

/// Expansion latency buckets, seconds: expansions take from tens of milliseconds (fast edge
/// GPU, short point) to tens of seconds (CPU, long budget).
const EXPANSION_BUCKETS: [f64; 12] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Every metric the agent exports.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    /// `pice_edge_queue_depth`: admitted expansions waiting for a slot.
    pub queue_depth: IntGauge,
    /// `pice_edge_running`: expansions holding a slot.
    pub running: IntGauge,
    pub rejected: IntCounter,
    pub tokens: IntCounter,
    pub prompt_tokens: IntCounter,
    pub expansion_seconds: Histogram,
    pub backend_errors: IntCounter,
    pub cancelled: IntCounter,
    pub deadline_exceeded: IntCounter,
}

impl AgentMetrics {
    /// Creates the metrics for `model` and registers them in `registry`.
    pub fn register(registry: &Registry, model: &str) -> Result<Self, prometheus::Error> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("model", model);
        let metrics = Self {
            queue_depth: IntGauge::with_opts(opts(
                "pice_edge_queue_depth",
                "Admitted expansions waiting for a slot (queue depth = this + pice_edge_running).",
            ))?,
            running: IntGauge::with_opts(opts("pice_edge_running", "Expansions being generated now."))?,
            rejected: IntCounter::with_opts(opts(
                "pice_edge_rejected_total",
                "Expansions refused with RESOURCE_EXHAUSTED because slots and queue were full.",
            ))?,
            tokens: IntCounter::with_opts(opts("pice_edge_tokens_total", "Tokens generated for callers."))?,
            prompt_tokens: IntCounter::with_opts(opts(
                "pice_edge_prompt_tokens_total",
                "Prompt tokens of finished expansions, as the backend reported them (its prefill work).",
            ))?,
            expansion_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "pice_edge_expansion_seconds",
                    "Time from receiving an expansion to its last token, queueing included.",
                )
                .const_label("model", model)
                .buckets(EXPANSION_BUCKETS.to_vec()),
            )?,
            backend_errors: IntCounter::with_opts(opts(
                "pice_edge_backend_errors_total",
                "Expansions that failed because the model server failed.",
            ))?,
            cancelled: IntCounter::with_opts(opts(
                "pice_edge_cancelled_total",
                "Expansions the caller cancelled before the end; generation was stopped.",
            ))?,
            deadline_exceeded: IntCounter::with_opts(opts(
                "pice_edge_deadline_exceeded_total",
                "Expansions stopped with DEADLINE_EXCEEDED.",
            ))?,
        };
        metrics.register_all(registry)?;
        Ok(metrics)
    }

    fn register_all(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.queue_depth.clone()))?;
        registry.register(Box::new(self.running.clone()))?;
        registry.register(Box::new(self.rejected.clone()))?;
        registry.register(Box::new(self.tokens.clone()))?;
        registry.register(Box::new(self.prompt_tokens.clone()))?;
        registry.register(Box::new(self.expansion_seconds.clone()))?;
        registry.register(Box::new(self.backend_errors.clone()))?;
        registry.register(Box::new(self.cancelled.clone()))?;
        registry.register(Box::new(self.deadline_exceeded.clone()))
    }
}

/// `pice_edge_prefix_reused_tokens_total`, kept by the llama backend, which registers it with
/// its own (`LlamaBackend::register_metrics`): prompt tokens it did not decode because another
/// sequence already held them in the KV cache.
#[cfg(feature = "llama")]
pub fn prefix_reused_tokens(model: &str) -> Result<IntCounter, prometheus::Error> {
    IntCounter::with_opts(
        Opts::new(
            "pice_edge_prefix_reused_tokens_total",
            "Prompt tokens the llama backend copied from another sequence's KV cache instead of decoding them.",
        )
        .const_label("model", model),
    )
}
