//! The edge agent with the llama backend on SmolLM2-135M-Instruct (`make llama` passes its path
//! in PICE_MODEL_PATH), over gRPC on 127.0.0.1: the real `pice-edge-agent` binary (Expand, Load,
//! health, resident memory with the model loaded), and a deadline that stops the model's thread.
#![cfg(feature = "llama")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::llama::model_path;
use common::{TestAgent, eventually, expand_request, settings};
use futures::StreamExt;
use pice_edge_agent::SERVICE_NAME;
use pice_edge_agent::llama::{LlamaBackend, LlamaSettings};
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use pice_wire::proto::{ExpandChunk, ExpandRequest, LoadRequest};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A `pice-edge-agent` process; killed when dropped.
struct AgentProcess {
    child: Child,
    grpc: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl AgentProcess {
    async fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pice-edge-agent"))
            .args(["--backend", "llama", "--slots", "1", "--queue", "2", "--llama-threads", "1"])
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--model-path")
            .arg(model_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let serving = tokio::time::timeout(Duration::from_secs(60), serving_line(&mut lines, &log));
        let grpc = match serving.await {
            Ok(Some(grpc)) => grpc,
            _ => panic!("the agent did not start serving; its log:\n{}", log.lock().unwrap().join("\n")),
        };
        // Keep draining stderr so the agent never blocks on a full pipe.
        let drained = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                drained.lock().unwrap().push(line);
            }
        });
        Self { child, grpc, log }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await.unwrap()
    }

    /// Resident memory of the agent process, in MiB (Linux).
    fn rss_mib(&self) -> f64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    }

    fn logged(&self, message: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(message))
    }
}

/// Reads log lines up to "edge agent serving" and returns its gRPC address.
async fn serving_line(lines: &mut Lines<BufReader<ChildStderr>>, log: &Mutex<Vec<String>>) -> Option<String> {
    while let Some(line) = lines.next_line().await.ok()? {
        log.lock().unwrap().push(line.clone());
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if entry["fields"]["message"] == "edge agent serving" {
            return entry["fields"]["grpc"].as_str().map(str::to_owned);
        }
    }
    None
}

#[tokio::test]
async fn the_agent_binary_serves_expansions_from_the_gguf_model_over_grpc() {
    let agent = AgentProcess::start().await;
    assert!(agent.logged("model loaded"), "the agent logs the model load");
    let idle_rss = agent.rss_mib();
    let mut client = EdgeAgentClient::new(agent.channel().await);

    let report = client.load(LoadRequest {}).await.unwrap().into_inner();
    assert_eq!(report.model, "SmolLM2-135M-Instruct.Q4_1");
    assert!(report.ready);
    assert_eq!((report.slots, report.running, report.waiting), (1, 0, 0));
    let mut health = HealthClient::new(agent.channel().await);
    let request = HealthCheckRequest { service: SERVICE_NAME.into() };
    let status = health.check(request).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let request = ExpandRequest { max_tokens: 64, want_logprobs: true, seed: Some(5), ..expand_request(2) };
    let chunks: Vec<ExpandChunk> =
        client.expand(request).await.unwrap().into_inner().map(|c| c.unwrap()).collect().await;
    let (last, pieces) = chunks.split_last().unwrap();
    let text: String = pieces.iter().map(|c| c.text.as_str()).collect();
    let done = last.done.as_ref().expect("the last chunk carries the usage");
    eprintln!("expansion: {text:?}\ndone: {done:?}");
    assert!(pieces.len() >= 3 && text.split_whitespace().count() >= 3, "{text:?}");
    assert!(["stop", "length"].contains(&done.finish_reason.as_str()));
    assert!(done.prompt_tokens > 60 && (1..=64).contains(&done.completion_tokens), "{done:?}");
    assert!(done.mean_logprob.is_some_and(|l| l < 0.0));

    let report = client.load(LoadRequest {}).await.unwrap().into_inner();
    assert!(report.recent_tokens_per_second > 0.0, "{report:?}");
    let busy_rss = agent.rss_mib();
    eprintln!(
        "agent RSS with the model loaded: idle {idle_rss:.0} MiB, after an expansion {busy_rss:.0} MiB"
    );
    // 98 MB of weights plus llama.cpp's and the agent's own: well under 400 MiB.
    assert!(busy_rss < 400.0, "RSS {busy_rss:.0} MiB");
}

#[tokio::test]
async fn a_deadline_that_passes_mid_expansion_stops_the_model_thread() {
    let llama = LlamaSettings {
        model_path: model_path(),
        model_name: None,
        threads: Some(1),
        slots: 1,
        context_tokens: 1024,
        share_prefix: true,
    };
    let backend = Arc::new(LlamaBackend::load(&llama).unwrap());
    let agent = TestAgent::start(settings(1, 1), Arc::clone(&backend) as _).await;
    let request = ExpandRequest { max_tokens: 2000, deadline_ms: 250, seed: Some(4), ..expand_request(0) };
    let mut stream = agent.client().await.expand(request).await.unwrap().into_inner();
    let status = loop {
        match stream.next().await.expect("the stream ends with a status") {
            Ok(chunk) => assert!(chunk.done.is_none(), "finished within 250 ms"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let stopped = eventually(Duration::from_secs(5), || async { backend.stats().generating == 0 }).await;
    assert!(stopped, "the generation thread still runs: {:?}", backend.stats());
    let stats = backend.stats();
    assert_eq!((stats.cancelled_total, stats.completed_total), (1, 0), "{stats:?}");
    assert!(stats.tokens_total < 200, "stopped early: {stats:?}");
}
