//! PICE on real pods: the images built in the run (`make images`), imported into the real node's
//! containerd, installed with Helm under the restricted Pod Security Standard; a pool whose cloud
//! and edge model servers are the simulator's image turns Ready on running containers (probes,
//! ports, arguments and security contexts as the operator wrote them), and a request through the
//! gateway's Service (ClusterIP through kube-proxy; the gateway reaches the cloud by its Service
//! name through CoreDNS) gets a progressive answer. A second pool's edge runs the real
//! SmolLM2-135M in the llama agent, its weights fetched by the init container from a file server
//! pod in the test's namespace and checked against their sha256; its points are real model text.
//! A wrong checksum is a Degraded condition naming the model. `helm uninstall` and deleting the
//! pools leave nothing running. Runs only on a real node: `make e2e-real`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use pice_tests::namespace::TestNamespace;
use pice_tests::{helm, kubectl, poll, real_node};
use serde_json::{Value, json};

const SIM_IMAGE: &str = "ghcr.io/pice-dev/pice-sim:0.1.0";
const FILES_IMAGE: &str = "localhost/pice/test-files:0.1.0";

/// A pool whose cloud LLM and edge SLMs are `pice-sim` containers (simulated timing).
fn sim_pool(name: &str) -> Value {
    json!({
        "apiVersion": "pice.dev/v1alpha1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {
            "cloud": {
                "model": "llama-3.1-70b-instruct",
                "image": SIM_IMAGE,
                "args": ["--listen=0.0.0.0:8000", "--profile=cloud-llama70b-h100x4", "--model=llama-3.1-70b-instruct"],
                "port": 8000
            },
            "edge": {"pools": [{
                "name": "store",
                "models": [{
                    "name": "qwen2.5-1.5b-instruct",
                    "image": SIM_IMAGE,
                    "args": ["--listen=0.0.0.0:8080", "--profile=edge-qwen1.5b-jetson-orin", "--model=qwen2.5-1.5b-instruct"],
                    "port": 8080,
                    "slots": 4
                }],
                "replicas": {"min": 2, "max": 3}
            }]},
            "gateway": {"replicas": 1, "service": {"type": "ClusterIP", "port": 8080}},
            "routing": {
                "mode": "progressive",
                "sketch": {"maxPoints": 4, "wordsPerPoint": 8},
                "expansion": {"maxTokensPerPoint": 40, "deadlineMs": 4000}
            }
        }
    })
}

/// A pool whose edge is the llama agent on SmolLM2, its weights fetched from `url`.
fn llama_pool(name: &str, url: &str, sha256: &str) -> Value {
    let mut pool = sim_pool(name);
    pool["spec"]["edge"]["pools"] = json!([{
        "name": "real",
        "models": [{
            "name": "smollm2-135m-instruct",
            "engine": "llama",
            "weights": {"url": {"url": url, "sha256": sha256}},
            "slots": 2
        }],
        "replicas": {"min": 1, "max": 1}
    }]);
    pool["spec"]["routing"]["expansion"] = json!({"maxTokensPerPoint": 24, "deadlineMs": 60000});
    pool
}

/// A Deployment and Service `files` serving SmolLM2 as /smollm2.gguf inside the namespace.
async fn file_server(ns: &str) {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "files"},
        "spec": {"selector": {"matchLabels": {"app": "files"}}, "template": {
            "metadata": {"labels": {"app": "files"}},
            "spec": {"containers": [{
                "name": "files", "image": FILES_IMAGE, "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 1}
            }]}
        }}
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "files"},
        "spec": {"selector": {"app": "files"}, "ports": [{"port": 80, "targetPort": 8000}]}
    });
    for object in [deployment, service] {
        kubectl::ok(&["apply", "-n", ns, "-f", "-"], Some(&object.to_string())).await;
    }
    kubectl::ok(&["rollout", "status", "deployment/files", "-n", ns, "--timeout=120s"], None).await;
}

/// The sha256 of the SmolLM2 file the tests serve (`PICE_MODEL_PATH`).
async fn model_sha256() -> String {
    let path = std::env::var("PICE_MODEL_PATH").expect("PICE_MODEL_PATH: make e2e-real sets it");
    let out = kubectl::exec("sha256sum", &[&path], None).await;
    assert!(out.success, "{}", out.stderr);
    out.stdout.split_whitespace().next().unwrap_or_default().to_owned()
}

/// Asks the pool's gateway (its ClusterIP, from inside the node) for a progressive answer.
async fn ask(ns: &str, pool: &str) -> Value {
    let (status, answer) = ask_once(ns, pool).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// One progressive request to the pool's gateway Service: the status and the body.
async fn ask_once(ns: &str, pool: &str) -> (u16, Value) {
    let service = format!("{pool}-gateway");
    let jsonpath = "jsonpath={.spec.clusterIP}";
    let ip = kubectl::ok(&["get", "service", &service, "-n", ns, "-o", jsonpath], None).await;
    let url = format!("http://{ip}:8080/v1/chat/completions");
    let body = json!({
        "model": "llama-3.1-70b-instruct",
        "messages": [{"role": "user", "content": "What are the benefits of regular exercise?"}],
        "max_tokens": 200
    });
    let (status, text) = real_node::post_json(&url, &["x-pice-mode: progressive"], &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `name ip` of each running pod of the pool's edge Deployment that is not being deleted.
async fn edge_pods(ns: &str, pool: &str) -> Vec<String> {
    let selector = format!("pice.dev/pool={pool},app.kubernetes.io/component=edge");
    let path = concat!(
        "jsonpath={range .items[?(@.status.phase==\"Running\")]}",
        "{.metadata.name} {.status.podIP} {.metadata.deletionTimestamp}{\"\\n\"}{end}"
    );
    let out = kubectl::ok(&["get", "pods", "-n", ns, "-l", &selector, "-o", path], None).await;
    out.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() == 2)
        .map(|fields| fields.join(" "))
        .collect()
}

/// 200 progressive requests from 8 clients while one edge pod is deleted: none may fail.
async fn survives_an_edge_pod_deleted_under_load(ns: &str) {
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    let victim = edge_pods(ns, "assistant").await.first().cloned().expect("an edge pod");
    let victim = victim.split_whitespace().next().unwrap_or_default().to_owned();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let ns = ns.to_owned();
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..EACH {
                answers.push(ask_once(&ns, "assistant").await);
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    kubectl::ok(&["delete", "pod", &victim, "-n", ns, "--wait=false"], None).await;
    let (mut answered, mut failed, mut degraded, mut fallbacks) = (0, Vec::new(), 0, 0);
    for client in clients {
        for (status, answer) in client.await.unwrap() {
            if status == 200 {
                answered += 1;
                degraded += usize::from(answer["pice"]["degraded"].as_bool().unwrap_or(false));
                fallbacks += answer["pice"]["fallbacks"].as_u64().unwrap_or(0);
            } else {
                failed.push(format!("{status}: {answer}"));
            }
        }
    }
    eprintln!(
        "fault test: sent {}, answered {answered}, failed {}, degraded {degraded}, point fallbacks {fallbacks}",
        CLIENTS * EACH,
        failed.len()
    );
    assert!(failed.is_empty(), "requests failed while an edge pod was deleted: {failed:?}");
    assert_eq!(answered, CLIENTS * EACH);
}

/// Scaling the edge up (to 4; the autoscaler may already have added a third under the load
/// above) adds real pods that turn Ready and expand points.
async fn scaled_up_pods_take_traffic(ns: &str) {
    let before: Vec<String> = edge_pods(ns, "assistant").await;
    let patch = json!({"spec": {"edge": {"pools": [{
        "name": "store",
        "models": sim_pool("assistant")["spec"]["edge"]["pools"][0]["models"].clone(),
        "replicas": {"min": 4, "max": 4}
    }]}}});
    kubectl::ok(
        &["patch", "inferencepool", "assistant", "-n", ns, "--type=merge", "-p", &patch.to_string()],
        None,
    )
    .await;
    let started = Instant::now();
    let pods = poll::until("4 running edge pods", Duration::from_secs(60), || async {
        let pods = edge_pods(ns, "assistant").await;
        (pods.len() == 4).then_some(pods)
    })
    .await;
    let selector = "pice.dev/pool=assistant,app.kubernetes.io/component=edge";
    let deployment = kubectl::ok(&["get", "deployments", "-n", ns, "-l", selector, "-o", "name"], None).await;
    kubectl::ok(&["rollout", "status", deployment.trim(), "-n", ns, "--timeout=120s"], None).await;
    eprintln!("scaled {} → 4 edge pods, all Ready: {:.1} s", before.len(), started.elapsed().as_secs_f64());
    let new: Vec<&String> = pods.iter().filter(|p| !before.contains(p)).collect();
    assert!(!new.is_empty(), "no new pod among {pods:?} (before {before:?})");
    let ip = new[0].split_whitespace().nth(1).unwrap_or_default().to_owned();
    let tokens = poll::until("the new edge pod to expand points", Duration::from_secs(60), || async {
        for _ in 0..4 {
            let (status, answer) = ask_once(ns, "assistant").await;
            assert_eq!(status, 200, "{answer}");
        }
        let url = format!("http://{ip}:9090/metrics");
        let metrics = real_node::exec("curl", &["-sS", "--max-time", "5", &url]).await.stdout;
        let tokens: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("pice_edge_tokens_total{") || l.starts_with("pice_edge_tokens_total "))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (tokens > 0.0).then_some(tokens)
    })
    .await;
    eprintln!("the new edge pod generated {tokens} tokens");
}

async fn apply(ns: &str, object: &Value) {
    kubectl::ok(&["apply", "-n", ns, "-f", "-"], Some(&object.to_string())).await;
}

/// Waits until the pool is Ready and kube-proxy routes its gateway's ClusterIP (it programs a
/// new Service's endpoints a moment after the pods turn Ready).
async fn wait_ready(ns: &str, pool: &str, within: Duration) {
    poll::until(&format!("pool {pool} to turn Ready on real pods"), within, || async {
        (condition(ns, pool, "Ready").await == "True").then_some(())
    })
    .await;
    let service = format!("{pool}-gateway");
    let jsonpath = "jsonpath={.spec.clusterIP}";
    let ip = kubectl::ok(&["get", "service", &service, "-n", ns, "-o", jsonpath], None).await;
    let url = format!("http://{ip}:8080/healthz");
    poll::until(&format!("{service}'s ClusterIP to route"), Duration::from_secs(30), || async {
        real_node::exec("curl", &["-fsS", "--max-time", "2", "-o", "/dev/null", &url])
            .await
            .success
            .then_some(())
    })
    .await;
}

async fn condition(ns: &str, pool: &str, kind: &str) -> String {
    let path = format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}");
    kubectl::run(&["get", "inferencepool", pool, "-n", ns, "-o", &path], None).await.stdout
}

async fn pods(ns: &str) -> String {
    kubectl::ok(&["get", "pods", "-n", ns, "-o", "name"], None).await
}

#[tokio::test]
#[ignore = "needs the real node of tests/cluster/node: make e2e-real"]
async fn pools_turn_ready_on_real_pods_and_answer_progressively_through_their_services() {
    let _ = real_node::netns();
    TestNamespace::run("real-operator", |system| async move {
        // The operator's namespace enforces the restricted Pod Security Standard.
        let label = "pod-security.kubernetes.io/enforce=restricted";
        kubectl::ok(&["label", "namespace", &system.name, label], None).await;
        let started = Instant::now();
        helm::install(&system.name, &helm::chart(), &["--wait", "--timeout", "120s"]).await;
        eprintln!("helm install --wait (operator pod Ready): {:.1} s", started.elapsed().as_secs_f64());
        TestNamespace::run("real-pool", |ns| async move { serve_and_check(&ns.name).await }).await;
        helm::uninstall(&system.name).await;
        poll::until("the operator's pods to be gone", Duration::from_secs(120), || async {
            pods(&system.name).await.trim().is_empty().then_some(())
        })
        .await;
    })
    .await;
}

async fn serve_and_check(ns: &str) {
    let started = Instant::now();
    apply(ns, &sim_pool("assistant")).await;
    wait_ready(ns, "assistant", Duration::from_secs(180)).await;
    eprintln!("simulated pool Ready on real pods: {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let answer = ask(ns, "assistant").await;
    eprintln!("first answer through the gateway's ClusterIP: {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(answer["pice"]["mode"], "progressive", "{answer}");
    assert!(answer["pice"]["points"].as_u64().unwrap_or(0) >= 1, "{answer}");
    assert_eq!(answer["pice"]["fallbacks"].as_u64(), Some(0), "every point from a real edge pod: {answer}");

    survives_an_edge_pod_deleted_under_load(ns).await;
    scaled_up_pods_take_traffic(ns).await;

    // The real model: weights fetched from a pod of this namespace, checked, loaded.
    file_server(ns).await;
    let url = format!("http://files.{ns}.svc/smollm2.gguf");
    let sha = model_sha256().await;
    let started = Instant::now();
    apply(ns, &llama_pool("real", &url, &sha)).await;
    wait_ready(ns, "real", Duration::from_secs(300)).await;
    eprintln!("SmolLM2 pool Ready on real pods (weights fetched): {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let answer = ask(ns, "real").await;
    eprintln!("first answer with real edge text: {:.2} s: {answer}", started.elapsed().as_secs_f64());
    assert_eq!(answer["pice"]["mode"], "progressive", "{answer}");
    assert_eq!(answer["pice"]["fallbacks"].as_u64(), Some(0), "every point from SmolLM2: {answer}");
    assert!(answer["pice"]["edge_tokens"].as_u64().unwrap_or(0) > 0, "{answer}");

    // A wrong checksum: the pool says so, naming the model, and never runs the file.
    apply(ns, &llama_pool("wrong", &url, &"0".repeat(64))).await;
    let message = poll::until("Degraded naming the bad checksum", Duration::from_secs(120), || async {
        let path = "jsonpath={.status.conditions[?(@.type==\"Degraded\")].message}";
        let out = kubectl::run(&["get", "inferencepool", "wrong", "-n", ns, "-o", path], None).await;
        out.stdout.contains("bad checksum").then_some(out.stdout)
    })
    .await;
    assert!(message.contains("smollm2-135m-instruct"), "{message}");
    assert!(message.contains(&sha), "{message}");

    for pool in ["assistant", "real", "wrong"] {
        kubectl::ok(&["delete", "inferencepool", pool, "-n", ns, "--wait"], None).await;
    }
    kubectl::ok(&["delete", "deployment,service", "files", "-n", ns, "--wait"], None).await;
    poll::until("the pools' pods to be gone", Duration::from_secs(120), || async {
        pods(ns).await.trim().is_empty().then_some(())
    })
    .await;
}
