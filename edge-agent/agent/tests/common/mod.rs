//! Shared set-up of the integration tests: agents on 127.0.0.1:0 with simulated backends,
//! clients, and small polling helpers. Each test crate uses a subset.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pice_edge_agent::{AgentSettings, Defaults, bind};
use pice_sim::backend::SimBackend;
use pice_sim::{Profile, TpotPoint};
use pice_wire::generation::ModelBackend;
use pice_wire::proto::ExpandRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use prometheus::Registry;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

#[cfg(feature = "llama")]
pub mod llama;

/// A running agent; dropping it stops it.
pub struct TestAgent {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), pice_edge_agent::Error>>,
}

impl TestAgent {
    pub async fn start(settings: AgentSettings, backend: Arc<dyn ModelBackend>) -> Self {
        let agent = bind(settings, backend, Registry::new()).await.unwrap();
        let (grpc_addr, metrics_addr) = (agent.grpc_addr().unwrap(), agent.metrics_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.serve(async {
            let _ = stopped.await;
        }));
        Self { grpc_addr, metrics_addr, stop: Some(stop), task }
    }

    pub async fn client(&self) -> EdgeAgentClient<Channel> {
        EdgeAgentClient::connect(format!("http://{}", self.grpc_addr)).await.unwrap()
    }

    /// The agent's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_addr);
        http().get(url).send().await.unwrap().text().await.unwrap()
    }

    /// Asks the agent to stop, as SIGTERM does; it drains in-flight expansions.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the agent has stopped serving.
    pub fn has_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the agent and waits for it to drain.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        (&mut self.task).await.unwrap().unwrap();
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP client (reqwest is built without a TLS provider of its own; the crate installs one).
pub fn http() -> reqwest::Client {
    pice_wire::crypto::install_default_provider();
    reqwest::Client::new()
}

/// Settings for a test agent on loopback with `slots` and `queue`.
pub fn settings(slots: usize, queue: usize) -> AgentSettings {
    AgentSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        slots,
        queue,
        defaults: Defaults { max_tokens: 160, deadline: Duration::from_secs(30) },
        tls: None,
        readiness_interval: Duration::from_millis(200),
    }
}

/// A simulated model whose every decode step takes `tpot_ms`, whatever the batch.
pub fn sim_backend(tpot_ms: f64) -> Arc<SimBackend> {
    let profile = Profile {
        name: "test".into(),
        model: "test-model".into(),
        prefill_tokens_per_second: 1e6,
        tpot: vec![TpotPoint { batch: 1, ms: tpot_ms }],
        max_batch: 16,
        prefix_cache_tokens: 0,
    };
    Arc::new(SimBackend::start(profile, 42, None))
}

pub fn expand_request(point_index: u32) -> ExpandRequest {
    ExpandRequest {
        request_id: format!("test-{point_index}"),
        question: "How does a heat pump heat a house?".into(),
        sketch: vec![
            "A refrigerant absorbs outdoor heat".into(),
            "A compressor raises its temperature".into(),
            "Indoor coils release the heat".into(),
        ],
        point_index,
        max_tokens: 120,
        ..ExpandRequest::default()
    }
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}

/// The value of an unlabelled-by-request sample line `name{model="..."} value` in `/metrics`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
