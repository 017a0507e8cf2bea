//! Admission under load: with the edge too busy to expand within the point deadline a
//! progressive request goes cloud-only whole (never cut short), and past the pool's latency
//! limit it is refused with 429, `Retry-After` and OpenAI's error shape.

use std::time::Duration;

use pice_api::RoutingMode;
use pice_wire::proto::ExpandRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use serde_json::Value;

use super::harness::{Edge, Gateway, Setup, chat, sim_cloud};

const QUESTION: &str = "What are the main differences between Python and JavaScript?";

/// Holds `count` slow expansions on `edge` so that its load report shows it busy.
async fn occupy(edge: &Edge, count: usize) -> Vec<tonic::Streaming<pice_wire::proto::ExpandChunk>> {
    let mut client = EdgeAgentClient::connect(format!("http://{}", edge.addr)).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..count {
        let hold = ExpandRequest {
            question: "Why?".into(),
            sketch: vec!["A point that takes a while to expand".into()],
            max_tokens: 100,
            ..Default::default()
        };
        held.push(client.expand(hold).await.unwrap().into_inner());
    }
    held
}

async fn gateway_over_a_busy_edge(edge: &Edge, cloud_url: &str, max_latency_ms: i32) -> Gateway {
    let mut setup = Setup::new(cloud_url, &[edge], RoutingMode::Progressive);
    setup.routing.expansion.deadline_ms = 1000;
    setup.routing.admission.max_latency_ms = max_latency_ms;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    gateway
}

#[tokio::test]
async fn a_busy_edge_sends_progressive_requests_to_the_cloud_whole_and_past_the_limit_they_get_429() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(1, 8, 400.0).await;
    let _held = occupy(&edge, 4).await;

    let gateway = gateway_over_a_busy_edge(&edge, &cloud.url, 60_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 1), &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["pice"]["mode"].as_str(), body["pice"]["reason"].as_str(), body["pice"]["degraded"].as_bool()),
        (Some("cloud"), Some("edge_busy"), Some(false)),
        "{}",
        body["pice"]
    );
    let admitted = r#"pice_gateway_admission_total{outcome="cloud",pool="assistant"}"#;
    assert_eq!(gateway.metric(admitted).await, 1.0);

    let strict = gateway_over_a_busy_edge(&edge, &cloud.url, 1000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = strict.post("/v1/chat/completions", &chat(QUESTION, true, 1), &[]).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("over its capacity"));
    let rejected = r#"pice_gateway_admission_total{outcome="rejected",pool="assistant"}"#;
    assert_eq!(strict.metric(rejected).await, 1.0);
    let requests = r#"pice_gateway_requests_total{mode="progressive",outcome="rejected",pool="assistant"}"#;
    assert_eq!(strict.metric(requests).await, 1.0);
}

#[tokio::test]
async fn an_idle_edge_admits_progressive_with_full_budgets() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(4, 4, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;
    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 1), &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pice"]["mode"], "progressive", "{}", body["pice"]);
    let admitted = r#"pice_gateway_admission_total{outcome="progressive",pool="assistant"}"#;
    assert_eq!(gateway.metric(admitted).await, 1.0);
}
