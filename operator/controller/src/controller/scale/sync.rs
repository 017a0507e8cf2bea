//! The autoscaler's own loop: every sync period it plans every valid pool with edge pools from
//! the caches and the measured queues (a bounded number of pools at a time, each agent with its
//! own timeout), and asks for a reconcile of exactly the pools whose plan changed (replicas,
//! capacity, queue or reason). The reconcile then writes what changed, and nothing else.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures::channel::mpsc::Sender;
use futures::{SinkExt, StreamExt, stream};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::MissedTickBehavior;

use super::super::Context;
use super::super::observed::Observed;
use super::super::validate::validate;
use super::{Cluster, replan};
use pice_api::InferencePool;

/// Runs until the caches stop or the reconcile side hangs up.
pub async fn run(
    ctx: Arc<Context>,
    pools: Store<InferencePool>,
    mut reconcile: Sender<ObjectRef<InferencePool>>,
) {
    let mut ticks = tokio::time::interval(ctx.settings.sync_period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if ctx.caches.ready().await.is_err() {
        return;
    }
    loop {
        ticks.tick().await;
        let started = Instant::now();
        // Not `pools.wait_until_ready()`: the controller waits on that store, and its readiness
        // wakes one waiter only. Before it is filled it is empty, and the pass does nothing.
        let live = pools.state();
        ctx.forget_all_but(&live);
        let (observed, cluster) = (Observed::of_every_pool(&ctx.caches), Cluster::of(&ctx.caches));
        // A changed pool is reconciled at once, not after the slowest agent of the pass.
        let mut changed = pin!(
            stream::iter(live)
                .map(|pool| sync_pool(&ctx, &observed, &cluster, pool))
                .buffer_unordered(ctx.settings.measure_concurrency)
                .filter_map(|changed| async move { changed })
        );
        while let Some(pool) = changed.next().await {
            if reconcile.send(pool).await.is_err() {
                return;
            }
        }
        ctx.metrics.autoscaler_sync_duration.observe(started.elapsed().as_secs_f64());
    }
}

/// Plans one pool; the pool to reconcile when its plan changed.
async fn sync_pool(
    ctx: &Context,
    every_pool: &HashMap<(String, String), Observed>,
    cluster: &Cluster,
    pool: Arc<InferencePool>,
) -> Option<ObjectRef<InferencePool>> {
    let plannable = pool.metadata.deletion_timestamp.is_none()
        && !pool.spec.edge.pools.is_empty()
        && validate(&pool).is_empty();
    if !plannable {
        return None;
    }
    let key = (pool.namespace().unwrap_or_default(), pool.name_any());
    let observed = every_pool.get(&key).cloned().unwrap_or_default();
    let (_, changed) = replan(&pool, ctx, &observed, cluster).await;
    changed.then(|| ObjectRef::from_obj(pool.as_ref()))
}
