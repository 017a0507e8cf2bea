//! An agent in front of a real `pice-sim` HTTP server (started in-process on 127.0.0.1:0): the
//! OpenAI backend streams the expansion over gRPC, and a cancellation reaches the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestAgent, eventually, expand_request, http, metric, settings};
use futures::StreamExt;
use pice_sim::server::{SimState, router};
use pice_sim::{Simulator, profiles};
use pice_wire::openai_client::OpenAiBackend;
use prometheus::Registry;
use tokio::net::TcpListener;

/// A `pice-sim` server on a real socket; stops when the test's runtime ends.
struct SimServer {
    base_url: String,
}

async fn start_pice_sim(profile: &str) -> SimServer {
    let profile = profiles::named(profile).unwrap();
    let state = SimState::new(Simulator::start(profile, 7), "smollm", Registry::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    SimServer { base_url: format!("http://{addr}/v1") }
}

#[tokio::test]
async fn an_agent_in_front_of_pice_sim_streams_the_expansion_over_grpc() {
    let sim = start_pice_sim("edge-smollm-cpu").await;
    let backend = Arc::new(OpenAiBackend::new(&sim.base_url, "smollm").unwrap());
    let agent = TestAgent::start(settings(2, 2), backend).await;
    let chunks: Vec<_> = agent
        .client()
        .await
        .expand(expand_request(2))
        .await
        .unwrap()
        .into_inner()
        .map(|c| c.unwrap())
        .collect()
        .await;
    let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert!(text.starts_with("Indoor coils release the heat "), "{text}");
    let done = chunks.last().unwrap().done.as_ref().unwrap();
    assert_eq!(done.completion_tokens as usize, chunks.len() - 1);
    agent.shutdown().await;
}

#[tokio::test]
async fn cancelling_at_the_agent_stops_generation_in_pice_sim() {
    let sim = start_pice_sim("cloud-llama70b-h100x4").await;
    let backend = Arc::new(OpenAiBackend::new(&sim.base_url, "smollm").unwrap());
    let agent = TestAgent::start(settings(1, 1), backend).await;
    let mut stream = agent.client().await.expand(expand_request(0)).await.unwrap().into_inner();
    stream.next().await.unwrap().unwrap();
    drop(stream);

    let metrics_url = format!("{}/metrics", sim.base_url.trim_end_matches("/v1"));
    let sim_metrics = || async { http().get(&metrics_url).send().await.unwrap().text().await.unwrap() };
    let cancelled = eventually(Duration::from_secs(5), || async {
        metric(&sim_metrics().await, "pice_sim_requests_cancelled_total") == Some(1.0)
    });
    assert!(cancelled.await, "{}", sim_metrics().await);
    let metrics = sim_metrics().await;
    assert_eq!(metric(&metrics, "pice_sim_requests_completed_total"), Some(0.0));
    assert_eq!(metric(&metrics, "pice_sim_requests_running"), Some(0.0));
    assert_eq!(metric(&agent.metrics().await, "pice_edge_cancelled_total"), Some(1.0));
}

#[tokio::test]
async fn the_readiness_probe_on_the_metrics_port_follows_the_model_server() {
    let sim = start_pice_sim("edge-smollm-cpu").await;
    let ready =
        TestAgent::start(settings(1, 1), Arc::new(OpenAiBackend::new(&sim.base_url, "smollm").unwrap()))
            .await;
    let probe = |agent: &TestAgent, path: &str| format!("http://{}{path}", agent.metrics_addr);
    let status = |url: String| async move { http().get(url).send().await.unwrap().status().as_u16() };
    assert_eq!(status(probe(&ready, "/readyz")).await, 200);
    assert_eq!(status(probe(&ready, "/healthz")).await, 200);

    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let backend = OpenAiBackend::new(&format!("http://{nowhere}/v1"), "smollm").unwrap();
    let unready = TestAgent::start(settings(1, 1), Arc::new(backend)).await;
    assert_eq!(status(probe(&unready, "/readyz")).await, 503);
    assert_eq!(status(probe(&unready, "/healthz")).await, 200);
}
