//! Unit tests of the pure replica plan, on the shipped example pool.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::fixtures::pool;

/// A pod with `labels`, IP `ip` and the Ready condition `ready`.
fn pod(labels: &[(&str, &str)], ip: Option<&str>, ready: bool) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let condition = PodCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..Default::default()
    };
    pod.status = Some(PodStatus {
        pod_ip: ip.map(str::to_owned),
        conditions: Some(vec![condition]),
        ..Default::default()
    });
    pod
}

fn deleting(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    pod
}

fn edge_pod(edge_pool: &str, model: &str, ip: &str, ready: bool) -> Pod {
    let model = names::model_label(model);
    pod(&[(EDGE_POOL_LABEL, edge_pool), (names::MODEL_LABEL, model.as_str())], Some(ip), ready)
}

#[test]
fn only_ready_live_pods_of_the_model_are_measured_in_address_order() {
    let pool = pool();
    let edge_pool = &pool.spec.edge.pools[0];
    let model = &edge_pool.models[0];
    let observed = Observed {
        deployments: BTreeMap::new(),
        pods: vec![
            edge_pod("store-east", &model.name, "10.0.0.9", true),
            edge_pod("store-east", &model.name, "10.0.0.2", true),
            edge_pod("store-east", &model.name, "10.0.0.3", false),
            deleting(edge_pod("store-east", &model.name, "10.0.0.4", true)),
            edge_pod("factory-west", &model.name, "10.0.0.5", true),
            edge_pod("store-east", "another-model", "10.0.0.6", true),
        ]
        .into_iter()
        .map(Arc::new)
        .collect(),
    };
    let inputs = ModelInputs::new(&pool, edge_pool, model, &PoolCapacity::default(), &observed);
    assert_eq!(inputs.target.agents, ["10.0.0.2:50051", "10.0.0.9:50051"]);
}

#[test]
fn every_live_gateway_pod_with_an_ip_counts_ready_or_not() {
    let gateway = |ip, ready| pod(&[(COMPONENT_LABEL, "gateway")], ip, ready);
    let observed = Observed {
        deployments: BTreeMap::new(),
        pods: vec![
            gateway(Some("10.1.0.7"), false),
            gateway(Some("10.1.0.1"), true),
            gateway(None, true),
            deleting(gateway(Some("10.1.0.2"), true)),
            pod(&[(COMPONENT_LABEL, "edge")], Some("10.1.0.3"), true),
        ]
        .into_iter()
        .map(Arc::new)
        .collect(),
    };
    assert_eq!(gateways(&observed), ["10.1.0.1:8080", "10.1.0.7:8080"]);
}

#[test]
fn the_policy_is_the_spec_capped_at_what_fits() {
    let pool = pool();
    let edge_pool = &pool.spec.edge.pools[0];
    let policy = policy(edge_pool, 3, 0.1);
    assert_eq!((policy.min, policy.max, policy.capacity), (2, 6, 3));
    assert_eq!(policy.target, edge_pool.autoscaling.target_queue_depth);
    assert!((policy.tolerance - 0.1).abs() < f64::EPSILON);
}

#[test]
fn a_new_deployment_starts_from_min_and_an_existing_one_from_its_replicas() {
    let pool = pool();
    let edge_pool = &pool.spec.edge.pools[0];
    let model = &edge_pool.models[0];
    let capacity = PoolCapacity { nodes: 3, fits: [(model.name.clone(), 5)].into() };
    let fresh = ModelInputs::new(&pool, edge_pool, model, &capacity, &Observed::default());
    assert_eq!((fresh.previous, fresh.current, fresh.fits, fresh.nodes), (None, 2, 5, 3));

    let deployment = Deployment {
        spec: Some(DeploymentSpec { replicas: Some(4), ..Default::default() }),
        ..Default::default()
    };
    let observed =
        Observed { deployments: [(fresh.deployment.clone(), Arc::new(deployment))].into(), pods: vec![] };
    let existing = ModelInputs::new(&pool, edge_pool, model, &capacity, &observed);
    assert_eq!((existing.previous, existing.current), (Some(4), 4));
}

#[test]
fn the_plan_keeps_the_decision_and_why_the_queue_was_not_measured() {
    let pool = pool();
    let edge_pool = &pool.spec.edge.pools[0];
    let inputs = ModelInputs::new(
        &pool,
        edge_pool,
        &edge_pool.models[0],
        &PoolCapacity::default(),
        &Observed::default(),
    );
    let decision = Decision { replicas: 2, reason: "queue unknown, holding".into(), woken_by: None };
    let plan = inputs.clone().into_plan(Err("agent unreachable".into()), decision.clone());
    assert_eq!((plan.replicas, plan.queue, plan.unmeasured.as_deref()), (2, None, Some("agent unreachable")));
    assert_eq!(plan.deployment, inputs.deployment);
    let measured = inputs.into_plan(Ok(7.5), decision);
    assert_eq!((measured.queue, measured.unmeasured.as_deref()), (Some(7.5), None));
    assert_eq!(replicas(&[measured]).get("assistant-store-east-qwen2-5-1-5b-instruct"), Some(&2));
}

#[test]
fn a_plan_measured_before_a_replica_became_ready_is_out_of_date() {
    let pool = pool();
    let plans_for = |observed: &Observed| -> Vec<ModelPlan> {
        let models = pool.spec.edge.pools.iter().flat_map(|e| e.models.iter().map(move |m| (e, m)));
        let decision = Decision { replicas: 1, reason: "r".into(), woken_by: None };
        let capacity = PoolCapacity::default();
        models
            .map(|(e, m)| {
                ModelInputs::new(&pool, e, m, &capacity, observed).into_plan(Ok(0.0), decision.clone())
            })
            .collect()
    };
    let before = plans_for(&Observed::default());
    assert!(!super::super::measured_other_agents(&pool, &before, &Observed::default()));
    let model = &pool.spec.edge.pools[0].models[0].name;
    let one_ready = Observed {
        deployments: BTreeMap::new(),
        pods: vec![Arc::new(edge_pod("store-east", model, "10.0.0.2", true))],
    };
    assert!(super::super::measured_other_agents(&pool, &before, &one_ready));
    assert!(!super::super::measured_other_agents(&pool, &plans_for(&one_ready), &one_ready));
    assert!(super::super::measured_other_agents(&pool, &[], &Observed::default()), "no plan at all");
}

#[test]
fn the_pools_own_replicas_do_not_count_as_taken_room() {
    let pool = pool();
    let edge_pool = &pool.spec.edge.pools[0];
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1", "labels": edge_pool.node_selector},
        "status": {"allocatable": {"cpu": "8", "memory": "64Gi", "pods": "110"}},
    }))
    .unwrap();
    let on_n1 = |labels: &[(&str, &str)], cpu: &str| {
        let mut pod = pod(labels, Some("10.0.0.1"), true);
        pod.spec = serde_json::from_value(serde_json::json!(
            {"nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        ))
        .unwrap();
        Arc::new(pod)
    };
    let own = on_n1(&[(EDGE_POOL_LABEL, edge_pool.name.as_str())], "2");
    let other = on_n1(&[], "2");
    let taken = Taken::of(&[own.clone(), other]);
    let observed = Observed { deployments: BTreeMap::new(), pods: vec![own] };
    let mut tolerant = edge_pool.clone();
    tolerant.tolerations = Vec::new();
    let capacity = capacity(&tolerant, &[node], &taken, &observed);
    // 8 cpu less the other pod's 2 leaves room for 3 replicas of 2 cpu (the own replica's room is
    // counted as free: it is one of the replicas being sized).
    assert_eq!((capacity.nodes, capacity.fits.get(&edge_pool.models[0].name).copied()), (1, Some(3)));
}
