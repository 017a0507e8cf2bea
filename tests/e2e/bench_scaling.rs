//! Benchmark B3 (part): time from a queue spike on real edge agents to the Deployment patched
//! by the operator, with sync periods of 1 s and 5 s. Run with `make bench-scaling`; it writes
//! `docs/benchmarks/B3-scale-reaction.md`. Ignored in the normal test run (it is a benchmark).

use std::time::{Duration, Instant};

use pice_tests::agents::AgentFleet;
use pice_tests::load::Load;
use pice_tests::namespace::TestNamespace;
use pice_tests::nodes::FakeNodes;
use pice_tests::operator::OperatorProcess;
use pice_tests::{edge, example_pool, kubectl, poll, pools};
use serde_json::json;

const RUNS: usize = 7;
const DEPLOYMENT: &str = "bench-site-qwen2-5-1-5b-instruct";
const PODS: &str = "pice.dev/pool=bench,pice.dev/edge-pool=site";

/// Reaction times (seconds) of `RUNS` spikes with the given sync period.
async fn measure(ns: &TestNamespace, sync: &str) -> Vec<f64> {
    let operator = OperatorProcess::start_with(
        &ns.name,
        &format!("bench-{sync}"),
        "bench",
        &["--sync-period-seconds", sync],
    )
    .await;
    let fleet = AgentFleet::follow(ns, PODS);
    pools::wait_condition(ns, "bench", "ScalingActive", "True").await;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        edge::wait_replicas(ns, DEPLOYMENT, 1, Duration::from_secs(60)).await;
        edge::wait_pod_count(ns, PODS, 1).await;
        // Start each spike at a random phase of the sync loop, so the figures are not biased by
        // the spike always following the scale-down reconcile.
        let phase: f64 = rand::random::<f64>() * sync.parse::<f64>().unwrap_or(1.0);
        tokio::time::sleep(Duration::from_secs_f64(0.5 + phase)).await;
        let load = Load::start(&edge::live_pod_ip(ns, PODS).await, 8);
        let spike = Instant::now();
        poll::until("scale up", Duration::from_secs(60), || async {
            (edge::replicas(ns, DEPLOYMENT).await > Some(1)).then_some(())
        })
        .await;
        times.push(spike.elapsed().as_secs_f64());
        load.stop();
    }
    fleet.stop().await;
    operator.stop().await;
    times
}

fn summary(times: &[f64]) -> (f64, f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[sorted.len() / 2], sorted[0], sorted[sorted.len() - 1])
}

#[tokio::test]
#[ignore = "benchmark: run with `make bench-scaling`"]
async fn reaction_time_from_queue_spike_to_patched_deployment() {
    kubectl::apply_crds().await;
    TestNamespace::run("bench", |ns| async move {
        let mut nodes = FakeNodes::new(ns.client.clone(), &ns.name);
        nodes.add("16", "32Gi").await;
        let mut pool = example_pool("bench");
        pool["spec"]["cloud"] = json!({"model": "llama", "endpoint": "https://llm.example.com/v1"});
        let mut edge = pool["spec"]["edge"]["pools"][0].clone();
        edge["name"] = json!("site");
        edge["nodeSelector"] = json!({"pice.dev/edge-pool": nodes.pool});
        edge["models"][0]["resources"] = json!({"requests": {"cpu": "2", "memory": "1Gi"}});
        edge["replicas"] = json!({"min": 1, "max": 4});
        edge["autoscaling"] = json!({"targetQueueDepth": 2, "scaleDownStabilizationSeconds": 1});
        pool["spec"]["edge"]["pools"] = json!([edge]);
        pools::apply(&ns, &pool).await;
        let mut rows = Vec::new();
        for sync in ["1", "5"] {
            let (median, min, max) = summary(&measure(&ns, sync).await);
            rows.push(format!("| {sync} s | {median:.2} s | {min:.2} s | {max:.2} s |"));
        }
        nodes.delete().await;
        write_report(&rows);
    })
    .await;
}

fn write_report(rows: &[String]) {
    let git = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    let revision = git.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let report = format!(
        "# B3: queue spike to patched Deployment\n\n\
         Time from starting 8 concurrent expansions (at a random phase of the operator's sync loop) on a real `pice-edge-agent` (simulator backend, \
         2 slots) to the edge Deployment's `spec.replicas` being raised by `pice-operator`, on the \
         local control plane; {RUNS} spikes per setting, target queue 2 per replica.\n\n\
         | sync period | median | min | max |\n|---|---|---|---|\n{}\n\n\
         For comparison: the HPA controller syncs every 15 s by default and KEDA polls every 30 s, \
         so their reaction to the same spike is up to 15 s and 30 s plus the metrics pipeline.\n\n\
         Command: `make bench-scaling` · revision {revision} · {cores} cores · {date}\n",
        rows.join("\n")
    );
    let path = pice_tests::repo_root().join("docs/benchmarks/B3-scale-reaction.md");
    std::fs::create_dir_all(path.parent().unwrap_or(&path)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, &report).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("{report}");
}
