//! The operator reconciling pools on a real control plane: children, scheduling, status,
//! spec changes and garbage collection.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use pice_api::InferencePool;
use pice_api::gateway_config::GatewayConfig;
use pice_tests::namespace::TestNamespace;
use pice_tests::operator::OperatorProcess;
use pice_tests::{example_pool, kubectl, poll, pools};
use serde_json::json;

const CLOUD: &str = "assistant-cloud";
const STORE_EAST: &str = "assistant-store-east-qwen2-5-1-5b-instruct";
const FACTORY_WEST: &str = "assistant-factory-west-smollm2-360m-instruct";
const GATEWAY: &str = "assistant-gateway";

async fn start(ns: &TestNamespace) -> OperatorProcess {
    kubectl::apply_crds().await;
    OperatorProcess::start(&ns.name, "pice-operator", "e2e").await
}

#[tokio::test]
async fn a_valid_pool_gets_its_children_and_the_scheduler_binds_pods_to_their_tier() {
    TestNamespace::run("children", |ns| async move {
        let _operator = start(&ns).await;
        pools::apply(&ns, &example_pool("assistant")).await;
        let pool = ns.api::<InferencePool>().get("assistant").await.unwrap_or_else(|e| panic!("{e}"));
        let uid = pool.uid().unwrap_or_default();

        let cloud = pools::deployment(&ns, CLOUD).await;
        let pod = cloud.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_default();
        assert_eq!(cloud.spec.as_ref().and_then(|s| s.replicas), Some(2));
        assert_eq!(pod.node_selector, Some(BTreeMap::from([("pice.dev/tier".into(), "cloud".into())])));
        assert_eq!(pod.tolerations.unwrap_or_default()[0].key.as_deref(), Some("nvidia.com/gpu"));
        let limits = pod.containers[0].resources.clone().unwrap_or_default().limits.unwrap_or_default();
        assert_eq!(limits.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("4"));

        let edge = pools::deployment(&ns, STORE_EAST).await;
        let pod = edge.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_default();
        assert_eq!(edge.spec.as_ref().and_then(|s| s.replicas), Some(2), "replicas.min of store-east");
        assert_eq!(
            pod.node_selector,
            Some(BTreeMap::from([("pice.dev/edge-pool".into(), "store-east".into())]))
        );
        let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["model", "edge-agent"]);
        let requests = pod.containers[0].resources.clone().unwrap_or_default().requests.unwrap_or_default();
        assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("3Gi"));
        assert!(pod.topology_spread_constraints.is_some(), "edge replicas spread over nodes");

        for name in [CLOUD, STORE_EAST, FACTORY_WEST, GATEWAY] {
            let d = pools::deployment(&ns, name).await;
            let owner = &d.owner_references()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
                ("InferencePool", uid.as_str(), Some(true))
            );
            assert_eq!(d.labels().get("pice.dev/pool").map(String::as_str), Some("assistant"));
            assert_eq!(
                d.labels().get("app.kubernetes.io/managed-by").map(String::as_str),
                Some("pice-operator")
            );
        }
        let headless = pools::object::<Service>(&ns, STORE_EAST).await;
        assert_eq!(headless.spec.and_then(|s| s.cluster_ip).as_deref(), Some("None"));
        // Budgets only where replicas > 1 (factory-west runs one).
        pools::wait_labelled::<PodDisruptionBudget>(&ns, "assistant", &[CLOUD, GATEWAY, STORE_EAST]).await;
        pools::wait_labelled::<ServiceAccount>(&ns, "assistant", &[GATEWAY]).await;
        pools::wait_labelled::<Role>(&ns, "assistant", &[GATEWAY]).await;
        pools::wait_labelled::<RoleBinding>(&ns, "assistant", &[GATEWAY]).await;
        let config = pools::object::<ConfigMap>(&ns, GATEWAY).await;
        let text = config.data.unwrap_or_default().remove("gateway.json").unwrap_or_default();
        let config: GatewayConfig = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(config.cloud.url, format!("http://assistant-cloud.{}.svc:8000", ns.name));
        assert_eq!(config.edge.len(), 2);

        assert_pods_bound_to_their_tier(&ns).await;
    })
    .await;
}

/// Waits until the scheduler bound all 7 pods, then checks each node's labels.
async fn assert_pods_bound_to_their_tier(ns: &TestNamespace) {
    let pods_api = ns.api::<Pod>();
    let params = ListParams::default().labels("pice.dev/pool=assistant");
    let pods = poll::until("7 pods bound to nodes", Duration::from_secs(90), || async {
        let pods = pods_api.list(&params).await.ok()?.items;
        let bound = pods.iter().filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some())).count();
        (pods.len() == 7 && bound == 7).then_some(pods)
    })
    .await;
    let nodes = Api::<Node>::all(ns.client.clone());
    for pod in pods {
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let node = nodes.get(&node_name).await.unwrap_or_else(|e| panic!("{e}"));
        let (node_labels, labels) = (node.labels(), pod.labels());
        let tier = node_labels.get("pice.dev/tier").map(String::as_str);
        match labels.get("app.kubernetes.io/component").map(String::as_str) {
            Some("cloud") => assert_eq!(tier, Some("cloud"), "cloud pod {} on {node_name}", pod.name_any()),
            Some("edge") => assert_eq!(
                node_labels.get("pice.dev/edge-pool"),
                labels.get("pice.dev/edge-pool"),
                "edge pod {} on {node_name}",
                pod.name_any()
            ),
            Some("gateway") => assert_eq!(tier, Some("general"), "gateway pod on untainted nodes"),
            other => panic!("unexpected component {other:?}"),
        }
    }
}

#[tokio::test]
async fn status_reaches_ready_with_counts_and_degraded_explains_unschedulable_or_invalid_pools() {
    TestNamespace::run("status", |ns| async move {
        let _operator = start(&ns).await;
        pools::apply(&ns, &example_pool("assistant")).await;
        let pool = pools::wait_condition(&ns, "assistant", "Ready", "True").await;
        let status = pool.status.clone().unwrap_or_default();
        assert_eq!(status.observed_generation, pool.metadata.generation);
        assert_eq!(status.cloud.as_ref().map(|c| (c.ready_replicas, c.desired_replicas)), Some((2, 2)));
        assert_eq!(status.gateway.as_ref().map(|g| g.ready_replicas), Some(2));
        let edge: Vec<_> = status
            .edge_pools
            .iter()
            .map(|e| (e.name.as_str(), e.ready_replicas, e.desired_replicas))
            .collect();
        assert_eq!(edge, [("store-east", 2, 2), ("factory-west", 1, 1)]);
        assert_eq!(status.edge_replicas.as_deref(), Some("3/3"));
        assert_eq!(pools::condition(&pool, "Degraded").map(|c| c.status.as_str()), Some("False"));
        let events = kubectl::ok(
            &["get", "events", "-n", &ns.name, "--field-selector", "involvedObject.name=assistant"],
            None,
        )
        .await;
        assert!(events.contains("AllReplicasReady"), "an event records the transition to Ready:\n{events}");
        let table = kubectl::ok(&["get", "inferencepool", "assistant", "-n", &ns.name], None).await;
        assert!(table.contains("MODE") && table.contains("auto") && table.contains("3/3"), "{table}");

        let mut stranded = example_pool("stranded");
        stranded["spec"]["edge"]["pools"][1]["nodeSelector"] = json!({"pice.dev/edge-pool": "cell-site-9"});
        stranded["spec"]["cloud"]["resources"] = json!({"limits": {"nvidia.com/gpu": "64"}});
        pools::apply(&ns, &stranded).await;
        let pool = pools::wait_condition(&ns, "stranded", "Degraded", "True").await;
        let degraded = pools::condition(&pool, "Degraded").cloned().unwrap_or_else(|| panic!("no Degraded condition"));
        assert_eq!(degraded.reason, "PodsUnschedulable");
        assert!(degraded.message.contains("cloud ("), "names the cloud tier: {}", degraded.message);
        assert!(degraded.message.contains("Insufficient nvidia.com/gpu"), "{}", degraded.message);
        assert_eq!(pools::condition(&pool, "Ready").map(|c| c.status.as_str()), Some("False"));
        let pool = pools::wait_condition(&ns, "stranded", "Placed", "False").await;
        let placed = pools::condition(&pool, "Placed").map(|c| c.message.clone()).unwrap_or_default();
        assert!(placed.contains("edge pool factory-west model smollm2-360m-instruct: replicas.max is 3 but its 0 node(s) fit 0"), "{placed}");

        let mut invalid = example_pool("edgeless");
        invalid["spec"]["edge"]["pools"] = json!([]);
        invalid["spec"]["routing"]["mode"] = json!("progressive");
        pools::apply(&ns, &invalid).await;
        let pool = pools::wait_condition(&ns, "edgeless", "Degraded", "True").await;
        let degraded =
            pools::condition(&pool, "Degraded").cloned().unwrap_or_else(|| panic!("no Degraded condition"));
        assert_eq!(degraded.reason, "InvalidSpec");
        assert!(
            degraded.message.contains("routing.mode is progressive but edge.pools is empty"),
            "{}",
            degraded.message
        );
        assert!(
            pools::labelled::<Deployment>(&ns, "edgeless").await.is_empty(),
            "nothing applied for an invalid spec"
        );
    })
    .await;
}

#[tokio::test]
async fn weights_on_a_missing_claim_degrade_the_pool_naming_the_model_and_the_claim() {
    TestNamespace::run("weights", |ns| async move {
        let _operator = start(&ns).await;
        let mut pool = example_pool("unweighted");
        pool["spec"]["edge"]["pools"][0]["models"][0]["weights"] =
            json!({"pvc": {"claimName": "missing-weights"}});
        pools::apply(&ns, &pool).await;
        let pool = pools::wait_condition(&ns, "unweighted", "Degraded", "True").await;
        let degraded =
            pools::condition(&pool, "Degraded").cloned().unwrap_or_else(|| panic!("no Degraded condition"));
        assert_eq!(degraded.reason, "PodsUnschedulable");
        let message = &degraded.message;
        assert!(message.contains("edge pool store-east model qwen2-5-1-5b-instruct"), "{message}");
        assert!(message.contains("persistentvolumeclaim \"missing-weights\" not found"), "{message}");
    })
    .await;
}

#[tokio::test]
async fn changing_the_spec_rolls_the_children_and_deleting_the_pool_leaves_nothing_behind() {
    TestNamespace::run("lifecycle", |ns| async move {
        let _operator = start(&ns).await;
        pools::apply(&ns, &example_pool("assistant")).await;
        pools::wait_condition(&ns, "assistant", "Ready", "True").await;
        let hash = |d: &Deployment| {
            d.spec.as_ref().and_then(|s| {
                s.template.metadata.as_ref()?.annotations.clone()?.get("pice.dev/config-hash").cloned()
            })
        };
        let old_hash = hash(&pools::deployment(&ns, GATEWAY).await);

        let mut changed = example_pool("assistant");
        changed["spec"]["edge"]["pools"][0]["models"][0]["args"] =
            json!(["-m", "/models/qwen2.5-1.5b-q8_0.gguf"]);
        changed["spec"]["edge"]["pools"].as_array_mut().map(|p| p.pop());
        changed["spec"]["routing"]["mode"] = json!("cloud");
        pools::apply(&ns, &changed).await;

        let deployments = ns.api::<Deployment>();
        poll::until("store-east rolled with new args", Duration::from_secs(60), || async {
            let d = deployments.get(STORE_EAST).await.ok()?;
            let args = d.spec?.template.spec?.containers[0].args.clone()?;
            args.contains(&"/models/qwen2.5-1.5b-q8_0.gguf".to_string()).then_some(())
        })
        .await;
        poll::until("a new ReplicaSet for store-east", Duration::from_secs(60), || async {
            let params = ListParams::default().labels("pice.dev/edge-pool=store-east");
            (ns.api::<ReplicaSet>().list(&params).await.ok()?.items.len() >= 2).then_some(())
        })
        .await;
        poll::until("gateway rolled with the new routing config", Duration::from_secs(60), || async {
            let new_hash = hash(&deployments.get(GATEWAY).await.ok()?);
            (new_hash != old_hash).then_some(())
        })
        .await;
        poll::until("factory-west pruned", Duration::from_secs(60), || async {
            let gone = deployments.get_opt(FACTORY_WEST).await.ok()?.is_none()
                && ns.api::<Service>().get_opt(FACTORY_WEST).await.ok()?.is_none();
            gone.then_some(())
        })
        .await;
        pools::wait_condition(&ns, "assistant", "Ready", "True").await;

        kubectl::ok(&["delete", "inferencepool", "assistant", "-n", &ns.name, "--wait=true"], None).await;
        poll::until("garbage collection of every child", Duration::from_secs(90), || async {
            let left = [
                pools::labelled::<Deployment>(&ns, "assistant").await,
                pools::labelled::<ReplicaSet>(&ns, "assistant").await,
                pools::labelled::<Pod>(&ns, "assistant").await,
                pools::labelled::<Service>(&ns, "assistant").await,
                pools::labelled::<ConfigMap>(&ns, "assistant").await,
                pools::labelled::<ServiceAccount>(&ns, "assistant").await,
                pools::labelled::<Role>(&ns, "assistant").await,
                pools::labelled::<RoleBinding>(&ns, "assistant").await,
                pools::labelled::<PodDisruptionBudget>(&ns, "assistant").await,
            ]
            .concat();
            left.is_empty().then_some(())
        })
        .await;
    })
    .await;
}
