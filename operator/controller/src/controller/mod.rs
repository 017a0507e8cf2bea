//! The `InferencePool` controller: its shared context and the watch loop that drives reconcile.

mod apply;
mod conditions;
mod observed;
mod reconcile;
mod scale;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};

use crate::autoscale::{History, QueueMeasurer, WakeCounts};
use crate::children::Images;
use crate::children::names::{MANAGED_BY, POOL_LABEL};
use crate::metrics::Metrics;
use pice_api::InferencePool;

/// Settings of the controller, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Images of PICE's own containers.
    pub images: Images,
    /// How often a Ready pool is looked at again without any change.
    pub resync: Duration,
    /// How often a pool that is not Ready is looked at again.
    pub not_ready_requeue: Duration,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// How often edge queue depth is measured and replicas are decided.
    pub sync_period: Duration,
    /// Relative change of the per-replica queue ignored by the autoscaler.
    pub tolerance: f64,
}

/// What every reconciliation shares.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Records events on pools.
    pub recorder: Recorder,
    /// Who records them.
    reporter: Reporter,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Controller settings.
    pub settings: Settings,
    /// Measures edge queue depth.
    pub measurer: QueueMeasurer,
    /// Consecutive failures per pool, for retry backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Recent replica recommendations per edge Deployment (`namespace/name`).
    histories: Mutex<HashMap<String, History>>,
    /// The gateways' last wake-up count per pool (`namespace/name`).
    wake_counts: WakeCounts,
    /// When this controller started; the autoscaler's clock counts from here.
    started: Instant,
}

impl Context {
    /// The context of a controller run.
    pub fn new(
        client: Client,
        metrics: Metrics,
        settings: Settings,
        measurer: QueueMeasurer,
        identity: &str,
    ) -> Self {
        let reporter = Reporter { controller: MANAGED_BY.into(), instance: Some(identity.into()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            metrics,
            settings,
            measurer,
            failures: Mutex::new(HashMap::new()),
            histories: Mutex::new(HashMap::new()),
            wake_counts: WakeCounts::default(),
            started: Instant::now(),
        }
    }

    /// A recorder for an event whose note is news every time (a scaling, with its own numbers).
    /// The shared [`Self::recorder`] folds events of the same type, reason and action on one
    /// object within six minutes into the series of the first and keeps the first one's note,
    /// so a second scaling would show the numbers of the first.
    pub fn recorder_for_news(&self) -> Recorder {
        Recorder::new(self.client.clone(), self.reporter.clone())
    }

    /// Seconds since the controller started (monotonic).
    fn now_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Runs `f` on the recommendation history of one edge Deployment.
    fn with_history<T>(&self, key: &str, f: impl FnOnce(&mut History) -> T) -> T {
        let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
        f(histories.entry(key.to_string()).or_default())
    }

    fn count_failure(&self, pool: &InferencePool) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key(pool)).or_insert(0);
        *count += 1;
        *count
    }

    fn forget_failures(&self, pool: &InferencePool) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&key(pool));
    }
}

fn key(pool: &InferencePool) -> String {
    format!("{}/{}", pool.namespace().unwrap_or_default(), pool.name_any())
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves, then lets in-flight reconciles finish.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = &ctx.client;
    let ns = ctx.settings.namespace.as_deref();
    let ours = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    Controller::new(api::<InferencePool>(client, ns), watcher::Config::default().any_semantic())
        .owns(api::<Deployment>(client, ns), ours.clone())
        .owns(api::<Service>(client, ns), ours.clone())
        .owns(api::<ConfigMap>(client, ns), ours.clone())
        .watches(api::<Pod>(client, ns), watcher::Config::default().labels(POOL_LABEL), pool_of_pod)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile loop");
            }
        })
        .await;
}

/// The pool a pod belongs to, from its label (pods are owned by ReplicaSets, not by the pool).
fn pool_of_pod(pod: Pod) -> Option<ObjectRef<InferencePool>> {
    let name = pod.labels().get(POOL_LABEL)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}
