//! Failures: a killed edge agent, a full one, no edges at all, no cloud, a sketch without
//! points, and shutting down with a stream in flight.

use std::time::Duration;

use futures::StreamExt;
use pice_api::RoutingMode;
use serde_json::Value;

use crate::harness::{
    Edge, Gateway, Setup, chat, closed_url, events, fixed_cloud, sample, sim_cloud, streamed_text,
};

const QUESTION: &str = "What are the main differences between Python and JavaScript?";

/// A series of `name` with the pool label and one more, in Prometheus' (sorted) label order.
fn series(name: &str, label: &str, value: &str) -> String {
    if label < "pool" {
        format!(r#"{name}{{{label}="{value}",pool="assistant"}}"#)
    } else {
        format!(r#"{name}{{pool="assistant",{label}="{value}"}}"#)
    }
}

#[tokio::test]
async fn an_edge_agent_killed_mid_request_does_not_fail_the_request_and_the_fallback_is_counted() {
    let cloud = sim_cloud(1.0).await;
    let mut doomed = Edge::start(8, 8, 25.0).await;
    let survivor = Edge::start(8, 8, 25.0).await;
    let gateway =
        Gateway::start(Setup::new(&cloud.url, &[&doomed, &survivor], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;

    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, true, 8), &[]).await;
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    while !streamed_text(&events(&text)).contains(' ') {
        text.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    doomed.kill();
    while let Some(bytes) = body.next().await {
        text.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
    }

    let chunks = events(&text);
    assert_eq!(chunks.last().unwrap(), &Value::String("[DONE]".into()), "the request completed");
    let answer = streamed_text(&chunks);
    assert!(answer.starts_with("1. "), "{answer}");
    for number in 2..=4 {
        assert!(answer.contains(&format!("\n{number}. ")), "point {number} is there: {answer}");
    }
    let pice = &chunks.iter().find(|c| c["pice"].is_object()).unwrap()["pice"];
    assert_eq!(pice["degraded"], false, "{pice}");
    assert!(pice["fallbacks"].as_u64().unwrap() >= 1, "{pice}");
    assert!(gateway.metric(&series("pice_gateway_fallbacks_total", "reason", "edge_error")).await >= 1.0);
}

/// Both agents run one expansion at a time, so the plan gives each two of the four points; the
/// gateway learns loads only at start, so it does not know that one agent is busy and full.
#[tokio::test]
async fn a_full_agent_sends_its_points_to_another_replica() {
    let cloud = sim_cloud(1.0).await;
    let full = Edge::start(1, 0, 500.0).await;
    let free = Edge::start(1, 8, 2.0).await;
    let mut setup = Setup::new(&cloud.url, &[&full, &free], RoutingMode::Progressive);
    setup.load_interval = Duration::from_secs(3600);
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    let mut blocker =
        pice_wire::proto::edge_agent_client::EdgeAgentClient::connect(format!("http://{}", full.addr))
            .await
            .unwrap();
    let hold = pice_wire::proto::ExpandRequest {
        question: "Why?".into(),
        sketch: vec!["A point that takes a while to expand".into()],
        ..Default::default()
    };
    let _held = blocker.expand(hold).await.unwrap().into_inner();

    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 6), &[]).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pice"]["degraded"], false, "{}", body["pice"]);
    assert!(body["pice"]["edge_tokens"].as_u64().unwrap() > 0);
    assert!(gateway.metric(&series("pice_gateway_fallbacks_total", "reason", "edge_full")).await >= 1.0);
    let rejected = sample(&full.metrics().await, r#"pice_edge_rejected_total{model="test-model-simulated"}"#);
    assert!(rejected.unwrap_or(0.0) >= 1.0, "the full agent refused with RESOURCE_EXHAUSTED");
}

/// A gateway in progressive mode whose only edge agent was ready and then died, before the
/// gateway's next load poll could notice.
async fn gateway_with_a_dead_edge(to_cloud: bool) -> (Gateway, crate::harness::Server) {
    let cloud = sim_cloud(1.0).await;
    let mut edge = Edge::start(4, 4, 1.0).await;
    let mut setup = Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive);
    setup.load_interval = Duration::from_secs(3600);
    setup.routing.fallback.to_cloud = to_cloud;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    edge.kill();
    (gateway, cloud)
}

#[tokio::test]
async fn with_every_edge_dead_the_cloud_expands_the_points() {
    let (gateway, _cloud) = gateway_with_a_dead_edge(true).await;

    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 2), &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let pice = &body["pice"];
    assert_eq!(
        (pice["mode"].as_str(), pice["degraded"].as_bool()),
        (Some("progressive"), Some(false)),
        "{pice}"
    );
    assert_eq!(pice["edge_tokens"], 0);
    assert!(body["choices"][0]["message"]["content"].as_str().unwrap().contains("\n4. "));
    let edge_error = gateway.metric(&series("pice_gateway_fallbacks_total", "reason", "edge_error")).await;
    let no_edge = gateway.metric(&series("pice_gateway_fallbacks_total", "reason", "no_edge")).await;
    assert!(edge_error >= 1.0 && edge_error + no_edge >= 4.0, "{edge_error} + {no_edge}");
    assert!(gateway.metric(&series("pice_gateway_cloud_tokens_total", "kind", "expansion")).await > 0.0);
}

#[tokio::test]
async fn with_no_usable_edge_a_progressive_request_goes_cloud_only_and_asks_for_a_wakeup() {
    let cloud = sim_cloud(1.0).await;
    let mut setup = Setup::new(&cloud.url, &[], RoutingMode::Progressive);
    setup.edges = vec![closed_url().trim_start_matches("http://").to_owned()];
    let gateway = Gateway::start(setup).await;

    let wakeups = r#"pice_gateway_edge_wakeup_requests_total{pool="assistant"}"#;
    for (mode, wakeups_after) in [("progressive", 1.0), ("auto", 2.0)] {
        let response =
            gateway.post("/v1/chat/completions", &chat(QUESTION, false, 2), &[("x-pice-mode", mode)]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["pice"]["mode"].as_str(), body["pice"]["reason"].as_str()),
            (Some("cloud"), Some("no_edges")),
            "{mode}"
        );
        assert_eq!(gateway.metric(wakeups).await, wakeups_after, "{mode} found no edge");
    }
    let response =
        gateway.post("/v1/chat/completions", &chat(QUESTION, false, 2), &[("x-pice-mode", "cloud")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(gateway.metric(wakeups).await, 2.0, "cloud asked for: no edge wanted");
}

#[tokio::test]
async fn without_edges_and_without_cloud_fallback_the_sketch_lines_stand_in_and_the_answer_is_degraded() {
    let (gateway, _cloud) = gateway_with_a_dead_edge(false).await;

    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 2), &[]).await;
    assert_eq!(response.status(), 200, "a client never gets an error because the edge failed");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["pice"]["degraded"].as_bool(), body["pice"]["edge_tokens"].as_u64()),
        (Some(true), Some(0))
    );
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines.iter().all(|line| line.split_whitespace().count() == 7), "number and six words: {text}");
    let degraded = r#"pice_gateway_requests_total{mode="progressive",outcome="degraded",pool="assistant"}"#;
    assert_eq!(gateway.metric(degraded).await, 1.0);
    assert_eq!(
        gateway.metric(&series("pice_gateway_expansion_duration_seconds_count", "source", "sketch")).await,
        4.0
    );
}

#[tokio::test]
async fn a_cloud_that_is_down_is_a_503_in_openai_shape_and_the_gateway_keeps_serving() {
    let edge = Edge::start(2, 2, 1.0).await;
    let gateway = Gateway::start(Setup::new(&closed_url(), &[&edge], RoutingMode::Auto)).await;
    for (stream, mode) in [(false, "cloud"), (true, "cloud"), (false, "progressive"), (true, "progressive")] {
        let response =
            gateway.post("/v1/chat/completions", &chat(QUESTION, stream, 1), &[("x-pice-mode", mode)]).await;
        assert_eq!(response.status(), 503, "stream {stream}, {mode}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(body["error"]["code"], "cloud_unavailable");
        assert!(body["error"]["message"].as_str().unwrap().contains("unavailable"));
        assert!(body["error"].as_object().unwrap().contains_key("param"));
    }
    let health = crate::harness::client().get(format!("{}/healthz", gateway.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = crate::harness::client().get(format!("{}/readyz", gateway.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the cloud never answered");
}

#[tokio::test]
async fn a_sketch_with_neither_points_nor_an_answer_gets_a_cloud_only_answer() {
    // Only a preamble: no point to expand, and nothing that answers the question either.
    const PROSE: &str = "Here is an outline of the answer:";
    let cloud = fixed_cloud(PROSE).await;
    let edge = Edge::start(2, 2, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;

    for stream in [false, true] {
        let response = gateway.post("/v1/chat/completions", &chat(QUESTION, stream, 1), &[]).await;
        assert_eq!(response.headers()["x-pice-mode"], "cloud");
        let text = if stream {
            streamed_text(&events(&response.text().await.unwrap()))
        } else {
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (body["pice"]["reason"].as_str(), body["pice"]["fallbacks"].as_u64()),
                (Some("empty_sketch"), Some(1))
            );
            body["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
        };
        assert_eq!(text, PROSE, "never an empty answer");
    }
    assert_eq!(gateway.metric(&series("pice_gateway_fallbacks_total", "reason", "empty_sketch")).await, 2.0);
    assert_eq!(cloud.requests.lock().unwrap().len(), 4, "a sketch, then the cloud-only answer, twice");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let cloud = sim_cloud(5.0).await;
    let edge = Edge::start(4, 4, 1.0).await;
    let mut gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Cloud)).await;
    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, true, 1), &[]).await;
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();

    gateway.begin_shutdown();
    while let Some(bytes) = body.next().await {
        text.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
    }
    let chunks = events(&text);
    assert_eq!(chunks.last().unwrap(), &Value::String("[DONE]".into()), "the stream was drained, not cut");
    assert_eq!(streamed_text(&chunks).split_whitespace().count(), 200);
    let stopped = crate::harness::eventually(Duration::from_secs(5), || async { gateway.has_stopped() });
    assert!(stopped.await, "the gateway stops once the stream is done");
}
