//! The `InferencePool` controller: its shared context, the watches that fill its caches and
//! drive reconcile, and the autoscaler's loop beside it.

mod apply;
pub mod cache;
mod conditions;
mod observed;
mod reconcile;
mod scale;
pub mod status;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, controller, watcher};
use kube::{Api, Client, ResourceExt};

use self::apply::RecentWrites;
use self::cache::{Caches, Feeds};
use self::scale::Plans;
use crate::autoscale::{History, QueueMeasurer, WakeCounts};
use crate::children::Images;
use crate::children::names::{self, MANAGED_BY, POOL_LABEL};
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
    /// Pools reconciled at the same time.
    pub concurrency: u16,
    /// Pools whose queues the autoscaler measures at the same time.
    pub measure_concurrency: usize,
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
    /// What the watches hold; reconcile reads nothing else.
    pub caches: Caches,
    /// The autoscaler's last plan of each pool.
    plans: Plans,
    /// Children written a moment ago, which the caches may not show yet.
    recent_writes: RecentWrites,
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
        caches: Caches,
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
            caches,
            plans: Plans::default(),
            recent_writes: RecentWrites::default(),
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

    /// Forgets what is kept about pools that are not in `live` (deleted ones), so memory follows
    /// the number of pools.
    fn forget_all_but(&self, live: &[Arc<InferencePool>]) {
        let uids: HashSet<String> = live.iter().filter_map(|p| p.uid()).collect();
        let keys: HashSet<String> = live.iter().map(|p| key(p)).collect();
        let deployments: HashSet<String> = live
            .iter()
            .flat_map(|pool| {
                let namespace = pool.namespace().unwrap_or_default();
                pool.spec.edge.pools.iter().flat_map(move |edge_pool| {
                    let namespace = namespace.clone();
                    edge_pool.models.iter().map(move |model| {
                        format!("{namespace}/{}", names::edge(&pool.name_any(), &edge_pool.name, &model.name))
                    })
                })
            })
            .collect();
        self.plans.retain(&uids);
        self.wake_counts.retain(|pool| keys.contains(pool));
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).retain(|pool, _| keys.contains(pool));
        self.histories.lock().unwrap_or_else(|e| e.into_inner()).retain(|d, _| deployments.contains(d));
        self.metrics.forget_pools(|namespace, pool| keys.contains(&format!("{namespace}/{pool}")));
        self.recent_writes.forget_settled();
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

/// How many autoscaler requests for a reconcile may wait before the autoscaler waits too.
const SCALE_REQUESTS_BUFFER: usize = 1024;

/// Runs the controller and the autoscaler until `shutdown` resolves, then lets in-flight
/// reconciles finish.
pub async fn run(
    client: Client,
    metrics: Metrics,
    settings: Settings,
    measurer: QueueMeasurer,
    identity: String,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = settings.namespace.clone();
    let (caches, feeds) = Caches::new(&client, ns.as_deref());
    let concurrency = settings.concurrency;
    let ctx = Arc::new(Context::new(client.clone(), metrics, settings, measurer, caches, &identity));
    let (scale_requests, scale_reconciles) = mpsc::channel(SCALE_REQUESTS_BUFFER);
    let pools = Controller::new(
        api::<InferencePool>(&client, ns.as_deref()),
        watcher::Config::default().any_semantic(),
    )
    .with_config(controller::Config::default().concurrency(concurrency));
    let store = pools.store();
    let (pools, nodes) = attach(pools, feeds);
    let controller = pools
        .reconcile_on(scale_reconciles)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Err(controller::Error::QueueError(error)) => tracing::warn!(%error, "watch failed; retrying"),
                Err(error) => tracing::debug!(%error, "reconcile loop"),
                Ok(_) => {}
            }
        });
    let autoscaler = tokio::spawn(scale::sync::run(ctx.clone(), store, scale_requests));
    // Nodes trigger no reconcile: the autoscaler reads them from the cache every sync period.
    let node_feed = tokio::spawn(nodes.for_each(|node| async move {
        if let Err(error) = node {
            tracing::warn!(%error, "watching Nodes failed; retrying");
        }
    }));
    controller.await;
    autoscaler.abort();
    node_feed.abort();
}

/// Feeds every cache from the controller's own polling: changes of the pool's children and of
/// its pods trigger its reconcile. Returns the Node feed, which the caller polls.
fn attach(
    pools: Controller<InferencePool>,
    feeds: Feeds,
) -> (Controller<InferencePool>, cache::Feed<k8s_openapi::api::core::v1::Node>) {
    let pools = pools
        .owns_stream(feeds.deployments)
        .owns_stream(feeds.services)
        .owns_stream(feeds.config_maps)
        .owns_stream(feeds.service_accounts)
        .owns_stream(feeds.roles)
        .owns_stream(feeds.role_bindings)
        .owns_stream(feeds.disruption_budgets)
        .watches_stream(feeds.pods, pool_of_pod);
    (pools, feeds.nodes)
}

/// The pool a pod belongs to, from its label (pods are owned by ReplicaSets, not by the pool).
fn pool_of_pod(pod: Pod) -> Option<ObjectRef<InferencePool>> {
    let name = pod.labels().get(POOL_LABEL)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}
