//! Starting the planned processes in order (cloud, edge replicas, gateway), one progress line
//! each with its ready check, and stopping them all, the gateway first.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::LocalError;
use super::bins::{Bins, EDGE_AGENT, GATEWAY, SIM};
use super::plan::{CLOUD_PROFILE, Cloud, EdgeBackend, EdgeReplica, Plan, gateway_config};
use crate::process::Child;

/// How long an edge agent may take to listen (llama loads its model first).
const EDGE_START_LIMIT: Duration = Duration::from_secs(120);
/// How long the gateway may take to be ready (its cloud answers, its edge agents are known).
const GATEWAY_READY_LIMIT: Duration = Duration::from_secs(60);

/// The running data plane.
pub struct Stack {
    children: Vec<Child>,
    /// Base URL of the gateway.
    pub url: String,
}

impl Stack {
    /// Starts everything in `plan`, the gateway on 127.0.0.1:`port`, logs in `log_dir`. On an
    /// error, what was started is stopped again.
    pub async fn start(plan: &Plan, bins: &Bins, port: u16, log_dir: &Path) -> Result<Self, LocalError> {
        let mut stack = Self { children: Vec::new(), url: String::new() };
        let started = async {
            let cloud_root = stack.cloud(&plan.cloud, bins, log_dir).await?;
            let mut endpoints = Vec::new();
            for edge in &plan.edges {
                endpoints.push(stack.edge(edge, bins, log_dir).await?);
            }
            let config = gateway_config(plan, &cloud_root, port);
            let config_file = log_dir.join("gateway.json");
            let json = serde_json::to_string_pretty(&config).map_err(LocalError::SerializeConfig)?;
            std::fs::write(&config_file, json)
                .map_err(|source| LocalError::WriteConfig { path: config_file.clone(), source })?;
            stack.url = stack.gateway(bins, &config_file, port, &endpoints, log_dir).await?;
            Ok(())
        };
        match started.await {
            Ok(()) => Ok(stack),
            Err(error) => {
                stack.stop().await;
                Err(error)
            }
        }
    }

    /// The ids of the running child processes.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Stops every child, the gateway first so no request reaches a stopped backend.
    pub async fn stop(mut self) {
        while let Some(child) = self.children.pop() {
            child.stop().await;
        }
    }

    /// The cloud's API root: a started simulator, or the user's server.
    async fn cloud(&mut self, cloud: &Cloud, bins: &Bins, log_dir: &Path) -> Result<String, LocalError> {
        match cloud {
            Cloud::Url { root, model } => {
                println!("  cloud    {model} at {root} (your server; the gateway checks it answers)");
                Ok(root.clone())
            }
            Cloud::Sim { model } => {
                let line = format!("cloud    {model}: pice-sim, profile {CLOUD_PROFILE} (SIMULATED)");
                let started = Progress::begin(&line);
                let addr = self.sim("cloud", bins, CLOUD_PROFILE, model, 7, log_dir).await?;
                started.done(&format!("http://{addr}"));
                Ok(format!("http://{addr}"))
            }
        }
    }

    /// One edge replica: its model server if simulated, then its agent; the agent's gRPC address.
    async fn edge(&mut self, edge: &EdgeReplica, bins: &Bins, log_dir: &Path) -> Result<String, LocalError> {
        let label = edge.label();
        let mut args =
            vec!["--model".to_owned(), edge.model.clone(), "--slots".into(), edge.slots.to_string()];
        let line = match &edge.backend {
            EdgeBackend::Sim { profile } => {
                let seed = u64::from(edge.replica);
                let addr =
                    self.sim(&format!("sim-{label}"), bins, profile, &edge.model, seed, log_dir).await?;
                args.extend([
                    "--backend".into(),
                    "openai".into(),
                    "--backend-url".into(),
                    format!("http://{addr}/v1"),
                ]);
                format!("edge     {label}: pice-edge-agent + pice-sim, profile {profile} (SIMULATED)")
            }
            EdgeBackend::Llama(path) => {
                args.extend([
                    "--backend".into(),
                    "llama".into(),
                    "--model-path".into(),
                    path.display().to_string(),
                ]);
                format!("edge     {label}: pice-edge-agent, llama.cpp on {} (real model)", file_name(path))
            }
            EdgeBackend::Url(root) => {
                args.extend([
                    "--backend".into(),
                    "openai".into(),
                    "--backend-url".into(),
                    format!("{root}/v1"),
                ]);
                format!("edge     {label}: pice-edge-agent in front of {root} (your server)")
            }
        };
        args.extend(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"]
                .map(String::from),
        );
        let started = Progress::begin(&line);
        let mut agent = Child::spawn(&format!("agent-{label}"), &bins.path(EDGE_AGENT)?, &args, log_dir)?;
        let grpc = agent.logged_field("edge agent serving", "grpc", EDGE_START_LIMIT).await;
        self.children.push(agent);
        let grpc = grpc?;
        started.done(&format!("gRPC {grpc}"));
        Ok(grpc)
    }

    /// Starts a `pice-sim`; its address once it listens.
    async fn sim(
        &mut self,
        name: &str,
        bins: &Bins,
        profile: &str,
        model: &str,
        seed: u64,
        log_dir: &Path,
    ) -> Result<String, LocalError> {
        let args =
            ["--profile", profile, "--model", model, "--seed", &seed.to_string(), "--listen", "127.0.0.1:0"];
        let mut sim = Child::spawn(name, &bins.path(SIM)?, &args.map(String::from), log_dir)?;
        let addr = sim.listening_addr().await;
        self.children.push(sim);
        Ok(addr?)
    }

    /// Starts the gateway and waits until its `/readyz` answers 200; its base URL.
    async fn gateway(
        &mut self,
        bins: &Bins,
        config: &Path,
        port: u16,
        edges: &[String],
        log_dir: &Path,
    ) -> Result<String, LocalError> {
        let started = Progress::begin(&format!("gateway  OpenAI-compatible API on 127.0.0.1:{port}"));
        let args = [
            format!("--config={}", config.display()),
            format!("--listen=127.0.0.1:{port}"),
            format!("--edge-endpoints={}", edges.join(",")),
            "--load-interval-ms=500".into(),
        ];
        let mut gateway = Child::spawn(GATEWAY, &bins.path(GATEWAY)?, &args, log_dir)?;
        let url = format!("http://{}", gateway.listening_addr().await?);
        if !wait_ready(&url).await {
            let reason = format!("/readyz did not answer 200 within {} s", GATEWAY_READY_LIMIT.as_secs());
            return Err(gateway.failed(&reason).await.into());
        }
        self.children.push(gateway);
        started.done(&url);
        Ok(url)
    }
}

/// Whether the gateway at `url` answers `/readyz` with 200 within [`GATEWAY_READY_LIMIT`].
async fn wait_ready(url: &str) -> bool {
    pice_wire::crypto::install_default_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + GATEWAY_READY_LIMIT;
    while Instant::now() < deadline {
        let response = client.get(format!("{url}/readyz")).send().await;
        if response.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

/// A progress line: what is starting, then where it is ready and how long it took, or
/// `failed` when dropped before [`Progress::done`].
struct Progress {
    since: Instant,
    finished: bool,
}

impl Progress {
    fn begin(what: &str) -> Self {
        print!("  {what} ... ");
        let _ = std::io::stdout().flush();
        Self { since: Instant::now(), finished: false }
    }

    fn done(mut self, result: &str) {
        println!("ready, {result} ({:.1} s)", self.since.elapsed().as_secs_f64());
        self.finished = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.finished {
            println!("failed");
        }
    }
}
