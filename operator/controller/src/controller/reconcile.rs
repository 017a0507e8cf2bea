//! One reconciliation of a pool, from the caches: validate → observe → take the autoscaler's plan
//! of the edge replicas (or plan now) → build children → write those that changed and prune →
//! record scaling events → status (written only when it changed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::apply::{apply_changed, prune};
use super::conditions::{DEGRADED, READY, transitions};
use super::observed::Observed;
use super::scale::{self, ModelPlan};
use super::status;
use super::validate::validate;
use crate::children::names::FIELD_MANAGER;
use crate::children::{self, Children};
use crate::error::{Error, Result};
use pice_api::{InferencePool, InferencePoolStatus};

/// Reconciles one pool and says when to look again.
pub async fn reconcile(pool: Arc<InferencePool>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_inner(&pool, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.forget_failures(&pool),
        Err(error) => ctx.metrics.reconcile_errors.with_label_values(&[error.category()]).inc(),
    }
    result
}

async fn reconcile_inner(pool: &InferencePool, ctx: &Context) -> Result<Action> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let problems = validate(pool);
    if !problems.is_empty() {
        tracing::warn!(pool = %pool.name_any(), ?problems, "invalid spec");
        publish_status(pool, ctx, status::invalid(pool, &problems, &now)).await?;
        ctx.metrics.reconciliations.with_label_values(&["invalid"]).inc();
        return Ok(Action::await_change());
    }
    ctx.caches.ready().await?;
    let observed = Observed::of(pool, &ctx.caches);
    let plans = plans(pool, ctx, &observed).await;
    let desired = children::build(pool, &ctx.settings.images, &scale::replicas(&plans))?;
    let written = apply_children(pool, ctx, &desired).await?;
    record_scaling(pool, ctx, &plans, &written).await;
    let status = status::compute(pool, &desired, &observed, &plans, &now);
    let ready = status.conditions.iter().any(|c| c.type_ == READY && c.status == "True");
    ctx.metrics.record_status(&pool.name_any(), &pool.namespace().unwrap_or_default(), &status);
    publish_status(pool, ctx, status).await?;
    ctx.metrics.reconciliations.with_label_values(&["ok"]).inc();
    Ok(Action::requeue(if ready { ctx.settings.resync } else { ctx.settings.not_ready_requeue }))
}

/// The autoscaler's last plan of the pool's edge Deployments, or a new one when it has none for
/// the current spec (a new pool, a changed spec) or measured other agents than the ready ones;
/// `previous` is what the cache holds now.
async fn plans(pool: &InferencePool, ctx: &Context, observed: &Observed) -> Vec<ModelPlan> {
    let current =
        ctx.plans.current(pool).filter(|plans| !scale::measured_other_agents(pool, plans, observed));
    let mut plans = match current {
        Some(plans) => plans,
        None => scale::replan(pool, ctx, observed, &scale::Cluster::of(&ctx.caches)).await.0,
    };
    for plan in &mut plans {
        plan.previous = observed.replicas(&plan.deployment);
    }
    plans
}

/// Writes the children that changed and prunes the ones no longer wanted; returns the names of
/// the Deployments written.
async fn apply_children(pool: &InferencePool, ctx: &Context, desired: &Children) -> Result<Vec<String>> {
    let ns = pool.namespace().unwrap_or_default();
    apply_changed::<ConfigMap>(ctx, &ns, &desired.config_maps).await?;
    apply_changed::<ServiceAccount>(ctx, &ns, &desired.service_accounts).await?;
    apply_changed::<Role>(ctx, &ns, &desired.roles).await?;
    apply_changed::<RoleBinding>(ctx, &ns, &desired.role_bindings).await?;
    apply_changed::<Service>(ctx, &ns, &desired.services).await?;
    let written = apply_changed::<Deployment>(ctx, &ns, &desired.deployments).await?;
    apply_changed::<PodDisruptionBudget>(ctx, &ns, &desired.disruption_budgets).await?;
    let (name, uid) = (pool.name_any(), pool.uid().unwrap_or_default());
    prune::<Deployment>(ctx, &ns, &name, &uid, &desired.names_of::<Deployment>()).await?;
    prune::<Service>(ctx, &ns, &name, &uid, &desired.names_of::<Service>()).await?;
    prune::<PodDisruptionBudget>(ctx, &ns, &name, &uid, &desired.names_of::<PodDisruptionBudget>()).await?;
    Ok(written)
}

/// A `Scaled` event and metrics for every edge Deployment written with other replicas.
async fn record_scaling(pool: &InferencePool, ctx: &Context, plans: &[ModelPlan], written: &[String]) {
    let (name, ns) = (pool.name_any(), pool.namespace().unwrap_or_default());
    for plan in plans.iter().filter(|p| written.contains(&p.deployment)) {
        let labels = [name.as_str(), ns.as_str(), plan.edge_pool.as_str(), plan.model.as_str()];
        let Some(previous) = plan.previous.filter(|p| *p != plan.replicas) else { continue };
        let direction = if plan.replicas > previous { "up" } else { "down" };
        ctx.metrics.scale_events.with_label_values(&[&labels[..], &[direction]].concat()).inc();
        if plan.woken_by.is_some() {
            ctx.metrics.wakeups.with_label_values(&labels).inc();
        }
        tracing::info!(pool = %name, edge_pool = %plan.edge_pool, model = %plan.model, from = previous, to = plan.replicas, reason = %plan.reason, "scaled");
        let note = format!(
            "edge pool {} model {}: {previous} → {} replicas ({}; {} fit on {} node(s))",
            plan.edge_pool, plan.model, plan.replicas, plan.reason, plan.fits, plan.nodes
        );
        let event = Event {
            type_: EventType::Normal,
            reason: "Scaled".into(),
            note: Some(note),
            action: "Scale".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder_for_news().publish(&event, &pool.object_ref(&())).await {
            tracing::warn!(%error, pool = %name, "failed to record event");
        }
    }
}

/// Writes the status when it differs from the stored one, and records events on transitions
/// (of a condition the pool had before, or to Degraded).
async fn publish_status(pool: &InferencePool, ctx: &Context, status: InferencePoolStatus) -> Result<()> {
    let previous = pool.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let name = pool.name_any();
    let api: Api<InferencePool> = Api::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": InferencePool::api_version(&()),
        "kind": InferencePool::kind(&()),
        "status": status,
    });
    api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| Error::Status { name: name.clone(), source })?;
    for condition in transitions(&previous.conditions, &status.conditions) {
        let warning = match condition.type_.as_str() {
            DEGRADED => condition.status == "True",
            READY => condition.status == "False",
            _ => false,
        };
        // A new pool's first conditions are news only when something is wrong: a thousand new
        // pools would otherwise post five events each before any of them is Ready.
        let first = !previous.conditions.iter().any(|c| c.type_ == condition.type_);
        if first && !(condition.type_ == DEGRADED && warning) {
            continue;
        }
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: condition.reason.clone(),
            note: Some(format!("{}={}: {}", condition.type_, condition.status, condition.message)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &pool.object_ref(&())).await {
            tracing::warn!(%error, pool = %name, "failed to record event");
        }
    }
    Ok(())
}

/// What to do after a failed reconciliation: transient errors are retried with backoff.
pub fn error_policy(pool: Arc<InferencePool>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.count_failure(&pool);
    let delay = Duration::from_secs(2u64.saturating_pow(failures.min(8))).min(Duration::from_secs(300));
    tracing::warn!(pool = %pool.name_any(), %error, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
