//! Prometheus metrics of the operator, registered in a registry passed in (never the global one).

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
}
