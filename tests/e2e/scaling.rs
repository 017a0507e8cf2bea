//! Placement and autoscaling on the local control plane: replicas capped by what the nodes hold,
//! following nodes that join, following the queue depth that real edge agents report, and woken
//! from zero by requests that a real gateway answered without an edge replica.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use pice_tests::agents::AgentFleet;
use pice_tests::gateway::GatewayStack;
use pice_tests::load::Load;
use pice_tests::namespace::TestNamespace;
use pice_tests::nodes::FakeNodes;
use pice_tests::operator::OperatorProcess;
use pice_tests::prometheus::Prometheus;
use pice_tests::{edge, example_pool, kubectl, poll, pools};
use serde_json::{Value, json};

/// A pool whose only edge pool is on the test's own nodes: one model asking 2 cpu per replica.
fn pool_on(nodes: &FakeNodes, min: i32, max: i32, autoscaling: Value) -> Value {
    let mut pool = example_pool("scaled");
    pool["spec"]["cloud"] = json!({"model": "llama", "endpoint": "https://llm.example.com/v1"});
    let mut edge = pool["spec"]["edge"]["pools"][0].clone();
    edge["name"] = json!("site");
    edge["nodeSelector"] = json!({"pice.dev/edge-pool": nodes.pool});
    edge["models"][0]["resources"] = json!({"requests": {"cpu": "2", "memory": "1Gi"}});
    edge["replicas"] = json!({"min": min, "max": max});
    edge["autoscaling"] = autoscaling;
    pool["spec"]["edge"]["pools"] = json!([edge]);
    pool
}

const DEPLOYMENT: &str = "scaled-site-qwen2-5-1-5b-instruct";
const PODS: &str = "pice.dev/pool=scaled,pice.dev/edge-pool=site";

async fn start_operator(ns: &TestNamespace, sync: &str) -> OperatorProcess {
    kubectl::apply_crds().await;
    OperatorProcess::start_with(&ns.name, "pice-operator", "e2e", &["--sync-period-seconds", sync]).await
}

/// The autoscaler's sync period in the placement test.
const SYNC_PERIOD: Duration = Duration::from_secs(2);

#[tokio::test]
async fn replicas_are_capped_by_node_capacity_and_follow_a_joining_node() {
    TestNamespace::run("placement", |ns| async move {
        let mut nodes = FakeNodes::new(ns.client.clone(), &ns.name);
        nodes.add("4", "8Gi").await;
        nodes.add("4", "8Gi").await;
        let _operator = start_operator(&ns, &SYNC_PERIOD.as_secs().to_string()).await;
        pools::apply(&ns, &pool_on(&nodes, 10, 10, json!({}))).await;

        let pool = pools::wait_condition(&ns, "scaled", "Placed", "False").await;
        let placed = pools::condition(&pool, "Placed").cloned().unwrap_or_else(|| panic!("no Placed"));
        assert_eq!(placed.reason, "InsufficientCapacity");
        let expected = "edge pool site model qwen2.5-1.5b-instruct: replicas.max is 10 but its 2 node(s) fit 4 (short by 6)";
        assert!(placed.message.contains(expected), "{}", placed.message);
        edge::wait_replicas(&ns, DEPLOYMENT, 4, Duration::from_secs(30)).await;
        assert_no_pod_pending(&ns).await;

        // The autoscaler reads Nodes from its cache every sync period: the joining node's room is
        // asked for within one period, plus the reconcile that writes it.
        nodes.add("4", "8Gi").await;
        let joined = Instant::now();
        edge::wait_replicas(&ns, DEPLOYMENT, 6, SYNC_PERIOD + Duration::from_secs(2)).await;
        eprintln!("a joining node's room was asked for after {:.2} s", joined.elapsed().as_secs_f64());
        let api = ns.api::<pice_api::InferencePool>();
        poll::until("status to show 3 nodes and 6 desired replicas", Duration::from_secs(30), || async {
            let status = api.get("scaled").await.ok()?.status?;
            let edge = status.edge_pools.first()?;
            (edge.nodes == Some(3) && edge.desired_replicas == 6).then_some(())
        })
        .await;
        assert_no_pod_pending(&ns).await;
        nodes.delete().await;
    })
    .await;
}

async fn assert_no_pod_pending(ns: &TestNamespace) {
    let pods = ns.api::<Pod>();
    poll::until("every pod of the pool bound to a node", Duration::from_secs(30), || async {
        let list = pods.list(&ListParams::default().labels(PODS)).await.ok()?;
        list.items.iter().all(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some())).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replicas_follow_the_queue_that_real_agents_report_and_hold_when_it_is_unknown() {
    TestNamespace::run("autoscale", |ns| async move {
        let mut nodes = FakeNodes::new(ns.client.clone(), &ns.name);
        for _ in 0..3 {
            nodes.add("8", "16Gi").await;
        }
        let autoscaling = json!({"targetQueueDepth": 2, "scaleDownStabilizationSeconds": 8});
        let _operator = start_operator(&ns, "1").await;
        pools::apply(&ns, &pool_on(&nodes, 1, 4, autoscaling)).await;
        let pool = pools::wait_condition(&ns, "scaled", "ScalingActive", "False").await;
        let scaling =
            pools::condition(&pool, "ScalingActive").cloned().unwrap_or_else(|| panic!("no condition"));
        assert_eq!(scaling.reason, "QueueDepthUnavailable", "no agent runs yet: {}", scaling.message);
        assert_eq!(edge::replicas(&ns, DEPLOYMENT).await, Some(1), "an unmeasurable queue holds replicas");

        let fleet = AgentFleet::follow(&ns, PODS);
        pools::wait_condition(&ns, "scaled", "ScalingActive", "True").await;
        let load = Load::start(&edge::live_pod_ip(&ns, PODS).await, 8);
        let spike = Instant::now();
        edge::wait_replicas(&ns, DEPLOYMENT, 4, Duration::from_secs(20)).await;
        eprintln!("queue spike to patched Deployment: {:?} (sync period 1 s)", spike.elapsed());
        assert!(spike.elapsed() < Duration::from_secs(6), "scaled up within a few sync periods");
        // The load's connections may open across two syncs (1 → 3 → 4 on a busy machine), and
        // the event is recorded just after the patch the wait above saw.
        let mut events = String::new();
        for _ in 0..20 {
            events =
                kubectl::ok(&["get", "events", "-n", &ns.name, "--field-selector", "reason=Scaled"], None)
                    .await;
            if events.contains(" → 4 replicas") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(events.contains(" → 4 replicas"), "a Scaled event with the numbers:\n{events}");

        load.stop();
        let calm = Instant::now();
        edge::wait_replicas(&ns, DEPLOYMENT, 1, Duration::from_secs(40)).await;
        assert!(
            calm.elapsed() >= Duration::from_secs(7),
            "scaled down before the window: {:?}",
            calm.elapsed()
        );

        edge::wait_pod_count(&ns, PODS, 1).await;
        let load = Load::start(&edge::live_pod_ip(&ns, PODS).await, 8);
        edge::wait_replicas(&ns, DEPLOYMENT, 4, Duration::from_secs(20)).await;
        fleet.stop().await;
        pools::wait_condition(&ns, "scaled", "ScalingActive", "False").await;
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(
            edge::replicas(&ns, DEPLOYMENT).await,
            Some(4),
            "agents gone: replicas hold, neither zero nor max"
        );
        load.stop();
        nodes.delete().await;
    })
    .await;
}

#[tokio::test]
async fn replicas_follow_the_queue_measured_by_a_real_prometheus_and_hold_when_it_is_gone() {
    TestNamespace::run("promscale", |ns| async move {
        let mut nodes = FakeNodes::new(ns.client.clone(), &ns.name);
        for _ in 0..2 {
            nodes.add("8", "16Gi").await;
        }
        let prometheus = Prometheus::start("site").await;
        let query = "sum(pice_edge_queue_depth{edge_pool=\"$edgePool\"}) + sum(pice_edge_running{edge_pool=\"$edgePool\"})";
        let autoscaling = json!({
            "targetQueueDepth": 2, "scaleDownStabilizationSeconds": 5, "source": "prometheus",
            "prometheus": {"url": prometheus.url, "query": query},
        });
        let _operator = start_operator(&ns, "1").await;
        pools::apply(&ns, &pool_on(&nodes, 1, 4, autoscaling)).await;
        let fleet = AgentFleet::follow(&ns, PODS);
        let keep_targets = async {
            loop {
                let ips = fleet.ips().await;
                prometheus.scrape(&ips.iter().map(|ip| format!("{ip}:9090")).collect::<Vec<_>>());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let scenario = async {
            pools::wait_condition(&ns, "scaled", "ScalingActive", "True").await;
            let load = Load::start(&edge::live_pod_ip(&ns, PODS).await, 8);
            let spike = Instant::now();
            edge::wait_replicas(&ns, DEPLOYMENT, 4, Duration::from_secs(30)).await;
            eprintln!("queue spike to patched Deployment through Prometheus: {:?}", spike.elapsed());
            load.stop();
            edge::wait_replicas(&ns, DEPLOYMENT, 1, Duration::from_secs(40)).await;
        };
        tokio::select! {
            () = scenario => {}
            () = keep_targets => {}
        }
        prometheus.stop().await;
        let pool = pools::wait_condition(&ns, "scaled", "ScalingActive", "False").await;
        let message = pools::condition(&pool, "ScalingActive").map(|c| c.message.clone()).unwrap_or_default();
        assert!(message.contains("prometheus"), "{message}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(edge::replicas(&ns, DEPLOYMENT).await, Some(1), "Prometheus gone: replicas hold");
        fleet.stop().await;
        nodes.delete().await;
    })
    .await;
}

#[tokio::test]
async fn an_edge_pool_at_zero_stays_there_until_requests_find_no_edge_replica_then_wakes() {
    TestNamespace::run("wakeup", |ns| async move {
        let mut nodes = FakeNodes::new(ns.client.clone(), &ns.name);
        nodes.add("8", "16Gi").await;
        let _operator = start_operator(&ns, "1").await;
        let autoscaling = json!({"scaleUpStabilizationSeconds": 60, "scaleDownStabilizationSeconds": 60});
        let mut pool = pool_on(&nodes, 0, 2, autoscaling);
        pool["spec"]["gateway"]["replicas"] = json!(1);
        pools::apply(&ns, &pool).await;
        let gateway_ip = edge::live_pod_ip(&ns, "pice.dev/pool=scaled,app.kubernetes.io/component=gateway").await;
        let target = json!([{"edgePool": "site", "model": "qwen2.5-1.5b-instruct", "service": DEPLOYMENT, "port": 50051}]);
        let gateway =
            GatewayStack::start_in_cluster("scaled", &ns.name, target, &format!("{gateway_ip}:8080")).await;

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(edge::replicas(&ns, DEPLOYMENT).await, Some(0), "no request: the edge pool stays at zero");

        let first = Instant::now();
        let asking = tokio::spawn(ask_progressive(gateway.url.clone()));
        edge::wait_replicas(&ns, DEPLOYMENT, 1, Duration::from_secs(20)).await;
        let woken = first.elapsed();
        eprintln!("first no-edge request to patched Deployment: {woken:?} (sync period 1 s)");
        let pice = asking.await.unwrap_or_else(|e| panic!("request task: {e}"));
        // Admission sends a request that finds no usable edge replica to the cloud whole.
        let answered = (pice["mode"].as_str(), pice["reason"].as_str(), pice["edge_tokens"].as_u64());
        assert_eq!(answered, (Some("cloud"), Some("no_edges"), Some(0)), "{pice}");
        assert!(woken < Duration::from_secs(3), "woken within two sync periods (and a reconcile): {woken:?}");
        let events =
            kubectl::ok(&["get", "events", "-n", &ns.name, "--field-selector", "reason=Scaled"], None).await;
        assert!(events.contains("0 → 1 replicas (wake-up: "), "a Scaled event that says wake-up:\n{events}");
        nodes.delete().await;
    })
    .await;
}

/// Asks the gateway at `url` for a progressive answer and returns its `pice` field.
async fn ask_progressive(url: String) -> Value {
    let body = json!({
        "model": "scaled", "max_tokens": 120,
        "messages": [{"role": "user", "content": "How can I improve my time management skills?"}],
    });
    let client = reqwest::Client::new();
    let request = client.post(format!("{url}/v1/chat/completions")).header("x-pice-mode", "progressive");
    let response = request.json(&body).send().await.unwrap_or_else(|e| panic!("request: {e}"));
    assert!(response.status().is_success(), "status {}", response.status());
    let answer: Value = response.json().await.unwrap_or_else(|e| panic!("answer: {e}"));
    answer["pice"].clone()
}
