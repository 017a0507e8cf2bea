//! A gateway as users run it: `pice-sim` as the cloud LLM and `pice-gateway` in front of given
//! edge agents, both real processes, plus chat traffic through the gateway.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::Workers;
use crate::operator::binary;

/// The simulated cloud and the gateway, killed when dropped.
pub struct GatewayStack {
    _cloud: Child,
    _gateway: Child,
    /// Base URL of the gateway (its API and `/metrics`).
    pub url: String,
    _dir: tempfile::TempDir,
}

impl GatewayStack {
    /// Starts the cloud and a gateway of pool `pool` that sends expansions to `edges`
    /// (`host:port` of agents' gRPC endpoints) with `deadline_ms` for each, then waits until
    /// the gateway is ready.
    pub async fn start(pool: &str, edges: &[String], deadline_ms: u64) -> Self {
        let edges = format!("--edge-endpoints={}", edges.join(","));
        let stack = Self::launch(pool, serde_json::json!([]), deadline_ms, &[&edges], "127.0.0.1:0").await;
        stack.wait_ready().await;
        stack
    }

    /// Starts the cloud and a gateway of pool `pool` as the operator runs it for edge pools that
    /// may scale to zero: listening at `listen` (e.g. a fake pod's IP and port), discovering the
    /// edge Services `edge` (gateway config entries) in `namespace`, ready without an edge
    /// replica; then waits until it is ready.
    pub async fn start_in_cluster(
        pool: &str,
        namespace: &str,
        edge: serde_json::Value,
        listen: &str,
    ) -> Self {
        let namespace = format!("--namespace={namespace}");
        let stack = Self::launch(pool, edge, 2000, &[&namespace, "--ready-without-edge"], listen).await;
        stack.wait_ready().await;
        stack
    }

    async fn wait_ready(&self) {
        let ready = format!("{}/readyz", self.url);
        crate::poll::until("the gateway's /readyz", Duration::from_secs(30), || async {
            reqwest::get(&ready).await.ok()?.status().is_success().then_some(())
        })
        .await;
    }

    async fn launch(
        pool: &str,
        edge: serde_json::Value,
        deadline_ms: u64,
        args: &[&str],
        listen: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let (cloud, cloud_addr) = spawn("pice-sim", &["--profile", "cloud-llama70b-h100x4"]).await;
        let config = serde_json::json!({
            "pool": pool, "port": 8080,
            "cloud": {"url": format!("http://{cloud_addr}"), "model": "llama-3.1-70b-instruct"},
            "edge": edge,
            "routing": {
                "mode": "auto",
                "sketch": {"maxPoints": 4, "wordsPerPoint": 6},
                "expansion": {"maxTokensPerPoint": 60, "deadlineMs": deadline_ms},
                "fallback": {"edgeRetries": 1, "toCloud": true},
            },
        });
        let config_file = dir.path().join("gateway.json");
        std::fs::write(&config_file, config.to_string()).unwrap_or_else(|e| panic!("gateway config: {e}"));
        let config_arg = format!("--config={}", config_file.display());
        let args = [&[config_arg.as_str(), "--load-interval-ms=200"], args].concat();
        let (gateway, addr) = spawn_at("pice-gateway", &args, listen).await;
        Self { _cloud: cloud, _gateway: gateway, url: format!("http://{addr}"), _dir: dir }
    }
}

/// Starts `name` listening on a free loopback port and reads the `listening on ADDR` line it
/// prints first.
pub async fn spawn(name: &str, args: &[&str]) -> (Child, String) {
    spawn_at(name, args, "127.0.0.1:0").await
}

/// Like [`spawn`], listening at `listen`.
pub async fn spawn_at(name: &str, args: &[&str], listen: &str) -> (Child, String) {
    let mut child = Command::new(binary(name))
        .args(args)
        .arg(format!("--listen={listen}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("{name}: no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await.ok().flatten().unwrap_or_default();
    let Some(addr) = line.strip_prefix("listening on ").map(|a| a.trim().to_owned()) else {
        panic!("{name} did not start (first line {line:?})");
    };
    // Keep reading so that later output never meets a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// Starts `workers` loops that keep sending chat completions to the gateway at `url`,
/// alternating the modes asked for (`x-pice-mode`: progressive, cloud) and streamed or not.
pub fn traffic(url: &str, workers: usize) -> Workers {
    let endpoint = format!("{url}/v1/chat/completions");
    Workers::start(workers, |i| {
        let endpoint = endpoint.clone();
        async move {
            let client = reqwest::Client::new();
            for n in i.. {
                let mode = if n % 2 == 0 { "progressive" } else { "cloud" };
                let _ = chat(&client, &endpoint, mode, n % 3 == 0).await;
            }
        }
    })
}

async fn chat(client: &reqwest::Client, endpoint: &str, mode: &str, stream: bool) -> reqwest::Result<()> {
    let body = serde_json::json!({
        "model": "assistant", "stream": stream, "max_tokens": 120,
        "messages": [{"role": "user", "content": "How can I improve my time management skills?"}],
    });
    let response = client.post(endpoint).header("x-pice-mode", mode).json(&body).send().await?;
    response.bytes().await.map(drop)
}
