//! Benchmark B3 (pools): the operator, watching all namespaces, with 1, 100 and 1000
//! InferencePools on the local control plane: time until all are Ready, its API requests (from
//! the audit log) while they are created and at rest, the whole API server's requests, its peak
//! memory and CPU time, and its reconcile durations. Run with `make bench-b3`; it adds rows to
//! `docs/benchmarks/B3-pools.json` and writes `B3-pools.md` and `B3-pools.png` from them
//! (with `PICE_B3_POOLS` empty it only rewrites those two). Ignored in the normal test run (it is
//! a benchmark).

mod plot;
mod report;
mod usage;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use pice_api::InferencePool;
use pice_tests::apiserver::{self, AuditLog};
use pice_tests::nodes::FakeNodes;
use pice_tests::operator::OperatorProcess;
use pice_tests::{kubectl, metrics_text, poll, pools, service_account};
use serde_json::json;

use report::Row;
use usage::Monitor;

/// The label value of the benchmark's edge nodes.
const EDGE_POOL: &str = "b3-edge";
/// The operator is killed (and that recorded) when its resident memory passes this.
const RSS_CAP: u64 = 6 << 30;
/// Pools created at once.
const CONCURRENCY: usize = 32;

/// The benchmark's knobs, from the environment.
struct Settings {
    sizes: Vec<usize>,
    label: String,
    operator: PathBuf,
    ready_timeout: Duration,
    rest: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let seconds = |name: &str, default: &str| {
            let value = var(name, default);
            Duration::from_secs(value.parse().unwrap_or_else(|e| panic!("{name}={value}: {e}")))
        };
        let sizes = var("PICE_B3_POOLS", "1,100,1000");
        let default_operator = pice_tests::repo_root().join("target/release/pice-operator");
        Self {
            sizes: sizes
                .split(',')
                .filter(|n| !n.trim().is_empty())
                .map(|n| n.trim().parse().unwrap_or_else(|e| panic!("PICE_B3_POOLS: {e}")))
                .collect(),
            label: var("PICE_B3_LABEL", "after"),
            operator: std::env::var_os("PICE_OPERATOR_BIN").map_or(default_operator, PathBuf::from),
            ready_timeout: seconds("PICE_B3_READY_TIMEOUT", "300"),
            rest: seconds("PICE_B3_REST_SECONDS", "60"),
        }
    }

    /// The command that reproduces this run.
    fn command(&self) -> String {
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        format!(
            "make bench-b3 PICE_B3_LABEL={} PICE_B3_POOLS={} PICE_OPERATOR_BIN={} PICE_B3_READY_TIMEOUT={} PICE_B3_REST_SECONDS={}",
            self.label,
            sizes.join(","),
            self.operator.display(),
            self.ready_timeout.as_secs(),
            self.rest.as_secs()
        )
    }
}

#[tokio::test]
#[ignore = "benchmark: run with `make bench-b3`"]
async fn operator_with_many_pools() {
    let settings = Settings::from_env();
    if settings.sizes.is_empty() {
        return report::regenerate();
    }
    assert!(settings.operator.exists(), "{} is missing (PICE_OPERATOR_BIN)", settings.operator.display());
    kubectl::apply_crds().await;
    let client = pice_tests::client().await;
    let most = settings.sizes.iter().copied().max().unwrap_or(1);
    let mut edge = FakeNodes::new(client.clone(), EDGE_POOL);
    let mut general = FakeNodes::general(client.clone(), "b3-general");
    for _ in 0..20 {
        edge.add_with_pods("1000", "4Ti", "500").await;
    }
    for _ in 0..most.div_ceil(400) {
        general.add_with_pods("1000", "4Ti", "500").await;
    }
    for &pools in &settings.sizes {
        let row = measure(&client, &settings, pools).await;
        eprintln!("{}", serde_json::to_string(&row).unwrap_or_default());
        report::record(row);
    }
    edge.delete().await;
    general.delete().await;
}

/// One size: a namespace with its operator and `n` pools, measured, then deleted.
async fn measure(client: &Client, settings: &Settings, n: usize) -> Row {
    let ns = format!("b3-{n}");
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))
        .unwrap_or_else(|e| panic!("namespace object: {e}"));
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("creating {ns}: {e}"));
    let binding = format!("b3-{n}-pice-operator");
    kubectl::ok(&["create", "serviceaccount", "pice-operator", "-n", &ns], None).await;
    let subject = format!("--serviceaccount={ns}:pice-operator");
    kubectl::ok(&["create", "clusterrolebinding", &binding, "--clusterrole=cluster-admin", &subject], None)
        .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let kubeconfig = service_account::kubeconfig(&ns, "pice-operator", dir.path()).await;
    let kubeconfig = kubeconfig.to_string_lossy();
    let env = [("KUBECONFIG", &*kubeconfig), ("RUST_LOG", "warn")];
    let operator = OperatorProcess::spawn_cluster_wide(&settings.operator, &ns, "pice-operator", &env);
    operator.wait_ready().await;
    poll::until("the operator to lead", Duration::from_secs(60), || async {
        operator.is_leader().await.then_some(())
    })
    .await;
    let pid = operator.pid().unwrap_or_else(|| panic!("the operator exited:\n{}", operator.log()));
    let monitor = Monitor::start(pid, RSS_CAP);
    let load_average = usage::load_average();

    let api: Api<InferencePool> = Api::namespaced(client.clone(), &ns);
    let (totals_start, cpu_start) = (apiserver::request_totals(client).await, monitor.now().cpu_seconds);
    let (start, started) = (Timestamp::now(), Instant::now());
    create_pools(&api, n).await;
    let create_s = started.elapsed().as_secs_f64();
    let ready = wait_ready(&api, n, (started, settings.ready_timeout), &monitor).await;
    let (waited_s, created) = (started.elapsed().as_secs_f64(), Timestamp::now());
    let (totals_created, cpu_created) = (apiserver::request_totals(client).await, monitor.now().cpu_seconds);
    let rest_started = Instant::now();
    while rest_started.elapsed() < settings.rest && monitor.now().killed_rss_bytes.is_none() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (rest_s, rested) = (rest_started.elapsed().as_secs_f64(), Timestamp::now());
    let totals_rested = apiserver::request_totals(client).await;
    let metrics = operator.metrics().await.unwrap_or_default();
    let quantile =
        |q| metrics_text::histogram_quantile(&metrics, "pice_operator_reconcile_duration_seconds", q);
    let used = monitor.now();
    drop(monitor);
    // The API server writes its audit events in batches at most a second apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let user = format!("system:serviceaccount:{ns}:pice-operator");
    let audit = AuditLog::of_cluster();
    let row = Row {
        label: settings.label.clone(),
        pools: n,
        ready: ready.0,
        ready_s: ready.1,
        waited_s,
        create_s,
        rest_s,
        killed_rss_mib: used.killed_rss_bytes.map(report::mib),
        operator_creation: report::keyed(&audit.requests(&user, start, created)),
        operator_rest: report::keyed(&audit.requests(&user, created, rested)),
        apiserver_creation: apiserver::by_verb(&apiserver::diff(&totals_created, &totals_start)),
        apiserver_rest: apiserver::by_verb(&apiserver::diff(&totals_rested, &totals_created)),
        peak_rss_mib: report::mib(used.peak_rss_bytes),
        cpu_creation_s: cpu_created - cpu_start,
        cpu_rest_s: used.cpu_seconds - cpu_created,
        reconcile_p50_s: quantile(0.5),
        reconcile_p99_s: quantile(0.99),
        load_average,
        ..Row::about(settings.command())
    };
    if used.killed_rss_bytes.is_none() {
        operator.stop().await;
    }
    namespaces
        .delete(&ns, &DeleteParams::background())
        .await
        .unwrap_or_else(|e| panic!("deleting {ns}: {e}"));
    wait_deleted(&api, &namespaces, &ns).await;
    kubectl::ok(&["delete", "clusterrolebinding", &binding], None).await;
    row
}

/// Creates pools `pool-0000`... concurrently, [`CONCURRENCY`] at a time.
async fn create_pools(api: &Api<InferencePool>, n: usize) {
    let create = |i: usize| async move {
        let pool = pool(&format!("pool-{i:04}"));
        api.create(&PostParams::default(), &pool).await.unwrap_or_else(|e| panic!("creating pool {i}: {e}"));
    };
    futures::stream::iter(0..n).map(create).buffer_unordered(CONCURRENCY).collect::<()>().await;
}

/// A pool with an external cloud endpoint (no cloud pods), one small model on the benchmark's
/// edge nodes (1 to 2 replicas, queue depth from the agents) and a gateway of 1 replica.
fn pool(name: &str) -> InferencePool {
    let pool = json!({
        "apiVersion": "pice.dev/v1alpha1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {
            "cloud": {"model": "llama-3.1-70b-instruct", "endpoint": "https://llm.example.com/v1"},
            "edge": {"pools": [{
                "name": "site",
                "nodeSelector": {"pice.dev/edge-pool": EDGE_POOL},
                "tolerations": [{"key": "pice.dev/edge", "operator": "Exists", "effect": "NoSchedule"}],
                "models": [{
                    "name": "smollm2-360m-instruct",
                    "image": "ghcr.io/ggml-org/llama.cpp:server",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }],
                "replicas": {"min": 1, "max": 2},
                "autoscaling": {"source": "agents"},
            }]},
            "gateway": {"replicas": 1},
        },
    });
    serde_json::from_value(pool).unwrap_or_else(|e| panic!("pool object: {e}"))
}

/// Polls every second until the `n` pools are Ready, `timeout` after `started` (the first
/// create) passed or the operator was killed; returns how many were Ready and, if all, the
/// seconds since `started`.
async fn wait_ready(
    api: &Api<InferencePool>,
    n: usize,
    (started, timeout): (Instant, Duration),
    monitor: &Monitor,
) -> (usize, Option<f64>) {
    // Served from the API server's watch cache, so the polling itself costs little.
    let params = ListParams::default().match_any();
    loop {
        let list = api.list(&params).await.unwrap_or_else(|e| panic!("listing pools: {e}"));
        let is_ready =
            |pool: &&InferencePool| pools::condition(pool, "Ready").is_some_and(|c| c.status == "True");
        let ready = list.items.iter().filter(is_ready).count();
        if ready == n {
            return (ready, Some(started.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= timeout || monitor.now().killed_rss_bytes.is_some() {
            eprintln!("not Ready: {ready}/{n} after {:.0} s", started.elapsed().as_secs_f64());
            return (ready, None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits (bounded) until the namespace's pools and then the namespace are gone.
async fn wait_deleted(api: &Api<InferencePool>, namespaces: &Api<Namespace>, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let pools = api.list_metadata(&ListParams::default()).await.map(|l| l.items.len()).unwrap_or(0);
        if pools == 0 && namespaces.get_opt(ns).await.ok().flatten().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("namespace {ns} still exists after 300 s; going on");
}
