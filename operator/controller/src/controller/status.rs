//! The pool's status, computed from what its children report (a pure step).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::conditions::{self, DEGRADED, PLACED, PROGRESSING, READY, SCALING, State};
use super::observed::{Observed, Rollout};
use super::scale::ModelPlan;
use crate::children::{self, names, weights};
use pice_api::{CloudStatus, EdgePoolStatus, GatewayStatus, InferencePool, InferencePoolStatus};

/// The status of a valid pool whose desired children are `desired`.
pub fn compute(
    pool: &InferencePool,
    desired: &children::Children,
    observed: &Observed,
    plans: &[ModelPlan],
    now: &Time,
) -> InferencePoolStatus {
    let name = pool.name_any();
    let want = |n: &str| desired_replicas(desired, n);
    let cloud_rollout = pool
        .spec
        .cloud
        .image
        .as_ref()
        .map(|_| observed.rollout(&names::cloud(&name), want(&names::cloud(&name))));
    let gateway_rollout = observed.rollout(&names::gateway(&name), want(&names::gateway(&name)));
    let mut edge_pools = Vec::new();
    let mut rollouts: Vec<(String, Rollout)> = vec![("gateway".into(), gateway_rollout)];
    if let Some(r) = cloud_rollout {
        rollouts.push(("cloud".into(), r));
    }
    for edge_pool in &pool.spec.edge.pools {
        for model in &edge_pool.models {
            let child = names::edge(&name, &edge_pool.name, &model.name);
            let rollout = observed.rollout(&child, want(&child));
            let plan = plans.iter().find(|p| p.deployment == child);
            edge_pools.push(edge_pool_status(pool, plan, (&edge_pool.name, &model.name), rollout, now));
            rollouts.push((format!("edge pool {} model {}", edge_pool.name, model.name), rollout));
        }
    }
    let (edge_ready, edge_desired) =
        edge_pools.iter().fold((0, 0), |(r, d), e| (r + e.ready_replicas, d + e.desired_replicas));
    let previous = pool.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut states = vec![ready(&rollouts), progressing(&rollouts), degraded(observed)];
    if !plans.is_empty() {
        states.extend([placed(plans), scaling(plans)]);
    }
    let measured: Vec<f64> = plans.iter().filter_map(|p| p.queue).collect();
    InferencePoolStatus {
        observed_generation: pool.metadata.generation,
        conditions: conditions::settle(states, previous, pool.metadata.generation, now),
        cloud: Some(CloudStatus {
            ready_replicas: cloud_rollout.map_or(0, |r| r.ready),
            desired_replicas: cloud_rollout.map_or(0, |r| r.desired),
            url: children::cloud_url(
                &name,
                pool.namespace().as_deref().unwrap_or_default(),
                &pool.spec.cloud,
            ),
        }),
        edge_pools,
        gateway: Some(GatewayStatus {
            ready_replicas: gateway_rollout.ready,
            url: children::gateway_url(pool),
        }),
        edge_replicas: Some(format!("{edge_ready}/{edge_desired}")),
        queue_depth: (!measured.is_empty()).then(|| measured.iter().sum()),
    }
}

fn edge_pool_status(
    pool: &InferencePool,
    plan: Option<&ModelPlan>,
    (edge_pool, model): (&str, &str),
    rollout: Rollout,
    now: &Time,
) -> EdgePoolStatus {
    let before = pool
        .status
        .as_ref()
        .and_then(|s| s.edge_pools.iter().find(|e| e.name == edge_pool && e.model == model));
    let scaled = plan.is_some_and(|p| p.previous.is_some_and(|r| r != p.replicas));
    EdgePoolStatus {
        name: edge_pool.into(),
        model: model.into(),
        ready_replicas: rollout.ready,
        desired_replicas: rollout.desired,
        nodes: plan.map(|p| p.nodes),
        queue_depth: plan.and_then(|p| p.queue),
        last_scale_time: if scaled {
            Some(now.clone())
        } else {
            before.and_then(|b| b.last_scale_time.clone())
        },
        message: plan.map(|p| p.unmeasured.clone().unwrap_or_else(|| p.reason.clone())),
    }
}

fn placed(plans: &[ModelPlan]) -> State {
    let short: Vec<String> = plans
        .iter()
        .filter(|p| p.fits < p.max)
        .map(|p| {
            format!(
                "edge pool {} model {}: replicas.max is {} but its {} node(s) fit {} (short by {})",
                p.edge_pool,
                p.model,
                p.max,
                p.nodes,
                p.fits,
                p.max - p.fits
            )
        })
        .collect();
    if short.is_empty() {
        State::new(PLACED, true, "Fits", "every edge pool's nodes can hold replicas.max of each model")
    } else {
        State::new(PLACED, false, "InsufficientCapacity", short.join("; "))
    }
}

fn scaling(plans: &[ModelPlan]) -> State {
    let unmeasured: Vec<String> = plans
        .iter()
        .filter_map(|p| {
            Some(format!("edge pool {} model {}: {}", p.edge_pool, p.model, p.unmeasured.as_ref()?))
        })
        .collect();
    if unmeasured.is_empty() {
        State::new(SCALING, true, "QueueMeasured", "replicas follow the measured queue depth")
    } else {
        let message = format!("holding replicas, queue depth unavailable: {}", unmeasured.join("; "));
        State::new(SCALING, false, "QueueDepthUnavailable", message)
    }
}

/// The status of a pool whose spec failed validation: nothing was applied.
pub fn invalid(pool: &InferencePool, problems: &[String], now: &Time) -> InferencePoolStatus {
    let message = format!("invalid spec: {}", problems.join("; "));
    let states = vec![
        State::new(READY, false, "InvalidSpec", message.clone()),
        State::new(PROGRESSING, false, "InvalidSpec", "waiting for the spec to be fixed"),
        State::new(DEGRADED, true, "InvalidSpec", message),
    ];
    let previous = pool.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    InferencePoolStatus {
        observed_generation: pool.metadata.generation,
        conditions: conditions::settle(states, previous, pool.metadata.generation, now),
        ..pool.status.clone().unwrap_or_default()
    }
}

fn desired_replicas(desired: &children::Children, name: &str) -> i32 {
    desired
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .and_then(|d| d.spec.as_ref()?.replicas)
        .unwrap_or(0)
}

fn ready(rollouts: &[(String, Rollout)]) -> State {
    let waiting: Vec<String> = rollouts
        .iter()
        .filter(|(_, r)| r.ready < r.desired)
        .map(|(what, r)| format!("{what} {}/{} ready", r.ready, r.desired))
        .collect();
    if waiting.is_empty() {
        State::new(READY, true, "AllReplicasReady", "every tier has all its replicas ready")
    } else {
        State::new(READY, false, "ReplicasNotReady", format!("waiting for {}", waiting.join(", ")))
    }
}

fn progressing(rollouts: &[(String, Rollout)]) -> State {
    let rolling: Vec<&str> =
        rollouts.iter().filter(|(_, r)| !r.done).map(|(what, _)| what.as_str()).collect();
    if rolling.is_empty() {
        State::new(PROGRESSING, false, "RolloutComplete", "every Deployment is rolled out")
    } else {
        State::new(PROGRESSING, true, "RollingOut", format!("rolling out {}", rolling.join(", ")))
    }
}

fn degraded(observed: &Observed) -> State {
    let mut weights: BTreeMap<String, String> = BTreeMap::new();
    for pod in &observed.pods {
        if let Some(why) = weights_failure(pod) {
            weights.entry(tier_of(pod)).or_insert(why);
        }
    }
    if !weights.is_empty() {
        let parts: Vec<String> = weights.iter().map(|(tier, why)| format!("{tier}: {why}")).collect();
        let message = format!("model weights could not be fetched: {}", parts.join("; "));
        return State::new(DEGRADED, true, "WeightsUnavailable", message);
    }
    let unschedulable: Vec<&Pod> =
        observed.pods.iter().map(AsRef::as_ref).filter(|p| is_unschedulable(p)).collect();
    if unschedulable.is_empty() {
        return State::new(DEGRADED, false, "AsExpected", "no problem found");
    }
    let mut by_tier: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for pod in unschedulable {
        let entry = by_tier.entry(tier_of(pod)).or_insert_with(|| (0, scheduler_message(pod)));
        entry.0 += 1;
    }
    let parts: Vec<String> =
        by_tier.iter().map(|(tier, (count, why))| format!("{tier} ({count} pod(s)): {why}")).collect();
    State::new(DEGRADED, true, "PodsUnschedulable", format!("pods cannot be scheduled: {}", parts.join("; ")))
}

/// Why an edge pod's weights could not be fetched: the last line its `fetch-weights` init
/// container logged before it failed (now or in its last run), without the `Error: ` prefix.
fn weights_failure(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
    let fetch = statuses.iter().find(|s| s.name == weights::FETCH_CONTAINER)?;
    let states = [fetch.state.as_ref(), fetch.last_state.as_ref()];
    let failed =
        states.into_iter().flatten().find_map(|s| s.terminated.as_ref().filter(|t| t.exit_code != 0))?;
    let message = failed.message.as_deref().unwrap_or_default();
    let last = message.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default().trim();
    let last = last.strip_prefix("Error: ").unwrap_or(last);
    Some(if last.is_empty() {
        format!("the download failed with exit code {}", failed.exit_code)
    } else {
        last.to_owned()
    })
}

/// Why the scheduler could not place a pod, as it said.
fn scheduler_message(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "no reason given".into())
}

/// The tier a pod belongs to, in words (`edge pool store-east model qwen`, `cloud`, `gateway`).
fn tier_of(pod: &Pod) -> String {
    let labels = pod.labels();
    match (labels.get(names::EDGE_POOL_LABEL), labels.get(names::MODEL_LABEL)) {
        (Some(pool), Some(model)) => format!("edge pool {pool} model {model}"),
        _ => labels.get(names::COMPONENT_LABEL).cloned().unwrap_or_else(|| "pool".into()),
    }
}

/// Whether a pod has been found unschedulable by the scheduler.
pub fn is_unschedulable(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| {
        cs.iter().any(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    use super::*;
    use crate::children::{EdgeReplicas, Images, build};
    use crate::fixtures::pool;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    /// Every desired Deployment, reported with `ready` of its replicas ready.
    fn observed(desired: &children::Children, ready: impl Fn(i32) -> i32) -> Observed {
        let deployments = desired.deployments.iter().map(|d| {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let mut d = d.clone();
            d.metadata.generation = Some(1);
            d.status = Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(want),
                updated_replicas: Some(want),
                ready_replicas: Some(ready(want)),
                ..DeploymentStatus::default()
            });
            (d.name_any(), std::sync::Arc::new(d))
        });
        Observed { deployments: deployments.collect(), pods: Vec::new() }
    }

    fn desired() -> children::Children {
        build(
            &pool(),
            &Images { edge_agent: "a".into(), edge_agent_llama: "l".into(), gateway: "g".into() },
            &EdgeReplicas::new(),
        )
        .unwrap()
    }

    fn condition<'a>(status: &'a InferencePoolStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).expect("condition present");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn all_replicas_ready_makes_the_pool_ready_with_counts() {
        let desired = desired();
        let status = compute(&pool(), &desired, &observed(&desired, |want| want), &[], &now());
        assert_eq!(condition(&status, READY), ("True", "AllReplicasReady"));
        assert_eq!(condition(&status, PROGRESSING), ("False", "RolloutComplete"));
        assert_eq!(condition(&status, DEGRADED), ("False", "AsExpected"));
        assert_eq!(status.edge_replicas.as_deref(), Some("3/3"));
        assert_eq!(status.cloud.as_ref().map(|c| c.ready_replicas), Some(2));
    }

    #[test]
    fn missing_replicas_keep_the_pool_not_ready_and_say_which_tier_waits() {
        let desired = desired();
        let status = compute(&pool(), &desired, &observed(&desired, |want| want - 1), &[], &now());
        let ready = status.conditions.iter().find(|c| c.type_ == READY).expect("Ready");
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("edge pool store-east model qwen2.5-1.5b-instruct 1/2 ready"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn weights_that_could_not_be_fetched_degrade_the_pool_naming_the_model_and_why() {
        use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus};
        let desired = desired();
        let mut observed = observed(&desired, |want| want);
        let failed = |message: &str| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 1,
                message: Some(message.into()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let mut pod = Pod::default();
        pod.metadata.labels = Some(names::edge_labels("assistant", "store-east", "smollm2"));
        let log = "INFO starting\nError: bad checksum: the file at http://f/m.gguf has sha256 ab, the pool asks for cd\n";
        pod.status = Some(PodStatus {
            init_container_statuses: Some(vec![ContainerStatus {
                name: weights::FETCH_CONTAINER.into(),
                last_state: Some(failed(log)),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        });
        observed.pods.push(std::sync::Arc::new(pod));
        let status = compute(&pool(), &desired, &observed, &[], &now());
        let degraded = status.conditions.iter().find(|c| c.type_ == DEGRADED).expect("Degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "WeightsUnavailable"));
        let want =
            "edge pool store-east model smollm2: bad checksum: the file at http://f/m.gguf has sha256 ab";
        assert!(degraded.message.contains(want), "{}", degraded.message);
    }

    #[test]
    fn an_unschedulable_pod_degrades_the_pool_naming_its_edge_pool() {
        let desired = desired();
        let mut observed = observed(&desired, |want| want);
        let mut pod = Pod::default();
        pod.metadata.name = Some("p-1".into());
        pod.metadata.labels = Some(names::edge_labels("assistant", "factory-west", "smollm2"));
        pod.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/9 nodes are available".into()),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        assert!(is_unschedulable(&pod));
        observed.pods.push(std::sync::Arc::new(pod));
        let status = compute(&pool(), &desired, &observed, &[], &now());
        let degraded = status.conditions.iter().find(|c| c.type_ == DEGRADED).expect("Degraded");
        assert_eq!(degraded.status, "True");
        assert!(
            degraded
                .message
                .contains("edge pool factory-west model smollm2 (1 pod(s)): 0/9 nodes are available"),
            "{}",
            degraded.message
        );
    }

    #[test]
    fn an_invalid_spec_is_reported_in_ready_and_degraded() {
        let status = invalid(&pool(), &["routing.mode is progressive".into()], &now());
        assert_eq!(condition(&status, READY), ("False", "InvalidSpec"));
        assert_eq!(condition(&status, DEGRADED), ("True", "InvalidSpec"));
    }
}
