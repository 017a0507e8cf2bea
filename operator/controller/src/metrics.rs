//! Prometheus metrics of the operator, registered in a registry passed in (never the global one).

use std::collections::HashMap;

use prometheus::core::Collector;
use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The operator's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Reconciliations by result (`ok`, `invalid`, `error`).
    pub reconciliations: IntCounterVec,
    /// Reconcile errors by category.
    pub reconcile_errors: IntCounterVec,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Desired replicas per pool, tier, edge pool and model.
    pub desired_replicas: IntGaugeVec,
    /// Ready replicas per pool, tier, edge pool and model.
    pub ready_replicas: IntGaugeVec,
    /// 1 while this process holds the leader lease.
    pub leader: IntGauge,
    /// Measured total queue depth per edge pool and model.
    pub queue_depth: GaugeVec,
    /// Changes of edge replicas by direction.
    pub scale_events: IntCounterVec,
    /// Edge Deployments woken from zero by requests that found no edge replica.
    pub wakeups: IntCounterVec,
    /// Children the reconcile would write, by kind and outcome (`applied`, `unchanged`).
    pub child_writes: IntCounterVec,
    /// Duration of one autoscaler pass over every pool.
    pub autoscaler_sync_duration: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let replica_labels = &["pool", "namespace", "tier", "edge_pool", "model"];
        let metrics = Self {
            reconciliations: IntCounterVec::new(
                Opts::new(
                    "pice_operator_reconciliations_total",
                    "Reconciliations of InferencePools by result",
                ),
                &["result"],
            )?,
            reconcile_errors: IntCounterVec::new(
                Opts::new("pice_operator_reconcile_errors_total", "Failed reconciliations by error category"),
                &["category"],
            )?,
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "pice_operator_reconcile_duration_seconds",
                    "Duration of one reconciliation",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
            desired_replicas: IntGaugeVec::new(
                Opts::new("pice_operator_desired_replicas", "Replicas the operator asks for"),
                replica_labels,
            )?,
            ready_replicas: IntGaugeVec::new(
                Opts::new("pice_operator_ready_replicas", "Replicas that are ready"),
                replica_labels,
            )?,
            leader: IntGauge::new("pice_operator_leader", "1 while this process holds the leader lease")?,
            queue_depth: GaugeVec::new(
                Opts::new(
                    "pice_operator_queue_depth",
                    "Measured waiting plus running requests of an edge pool's model",
                ),
                &["pool", "namespace", "edge_pool", "model"],
            )?,
            scale_events: IntCounterVec::new(
                Opts::new("pice_operator_scale_events_total", "Changes of edge replicas by direction"),
                &["pool", "namespace", "edge_pool", "model", "direction"],
            )?,
            wakeups: IntCounterVec::new(
                Opts::new(
                    "pice_operator_wakeups_total",
                    "Edge Deployments woken from zero by requests that found no edge replica",
                ),
                &["pool", "namespace", "edge_pool", "model"],
            )?,
            child_writes: IntCounterVec::new(
                Opts::new(
                    "pice_operator_child_writes_total",
                    "Children a reconcile would write, by kind and outcome: applied, or unchanged (not sent)",
                ),
                &["kind", "outcome"],
            )?,
            autoscaler_sync_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "pice_operator_autoscaler_sync_duration_seconds",
                    "Duration of one autoscaler pass: plan every pool, measure its queues",
                )
                .buckets(vec![0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
        };
        registry.register(Box::new(metrics.reconciliations.clone()))?;
        registry.register(Box::new(metrics.reconcile_errors.clone()))?;
        registry.register(Box::new(metrics.reconcile_duration.clone()))?;
        registry.register(Box::new(metrics.desired_replicas.clone()))?;
        registry.register(Box::new(metrics.ready_replicas.clone()))?;
        registry.register(Box::new(metrics.leader.clone()))?;
        registry.register(Box::new(metrics.queue_depth.clone()))?;
        registry.register(Box::new(metrics.scale_events.clone()))?;
        registry.register(Box::new(metrics.wakeups.clone()))?;
        registry.register(Box::new(metrics.child_writes.clone()))?;
        registry.register(Box::new(metrics.autoscaler_sync_duration.clone()))?;
        Ok(metrics)
    }

    /// Records the replica counts of a pool's status.
    pub fn record_status(&self, pool: &str, namespace: &str, status: &pice_api::InferencePoolStatus) {
        if let Some(cloud) = &status.cloud {
            self.set_replicas(
                &[pool, namespace, "cloud", "", ""],
                cloud.desired_replicas,
                cloud.ready_replicas,
            );
        }
        for edge in &status.edge_pools {
            let labels = [pool, namespace, "edge", edge.name.as_str(), edge.model.as_str()];
            self.set_replicas(&labels, edge.desired_replicas, edge.ready_replicas);
        }
    }

    fn set_replicas(&self, labels: &[&str], desired: i32, ready: i32) {
        self.desired_replicas.with_label_values(labels).set(i64::from(desired));
        self.ready_replicas.with_label_values(labels).set(i64::from(ready));
    }

    /// Drops the series of pools for which `live(namespace, pool)` says no (deleted pools), so
    /// that the metrics follow the pools there are, not every pool there ever was.
    pub fn forget_pools(&self, live: impl Fn(&str, &str) -> bool) {
        forget(&self.desired_replicas, &live);
        forget(&self.ready_replicas, &live);
        forget(&self.queue_depth, &live);
        forget(&self.scale_events, &live);
        forget(&self.wakeups, &live);
    }
}

/// Removes the series of `vec` whose `namespace` and `pool` labels `live` rejects.
fn forget<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    live: &impl Fn(&str, &str) -> bool,
) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> =
                metric.get_label().iter().map(|l| (l.name(), l.value())).collect();
            let (namespace, pool) = (labels.get("namespace"), labels.get("pool"));
            if let (Some(namespace), Some(pool)) = (namespace, pool)
                && !live(namespace, pool)
            {
                let _ = vec.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_of_a_deleted_pool_are_dropped_and_the_others_kept() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        for pool in ["kept", "gone"] {
            metrics.set_replicas(&[pool, "ns", "edge", "site", "m"], 2, 1);
            metrics.queue_depth.with_label_values(&[pool, "ns", "site", "m"]).set(3.0);
        }
        metrics.forget_pools(|namespace, pool| namespace == "ns" && pool == "kept");
        let pools: Vec<String> = registry
            .gather()
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .flat_map(|metric| metric.get_label().iter())
            .filter(|label| label.name() == "pool")
            .map(|label| label.value().to_string())
            .collect();
        assert_eq!(pools, ["kept", "kept", "kept"], "desired, queue and ready series of the kept pool only");
    }
}
