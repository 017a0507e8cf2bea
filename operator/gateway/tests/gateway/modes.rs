//! Answers in cloud, progressive and auto mode: whole and streamed, ordered, identical.

use std::time::{Duration, Instant};

use futures::StreamExt;
use pice_api::RoutingMode;
use serde_json::Value;

use crate::harness::{Edge, Gateway, Setup, chat, events, fixed_cloud, sample, sim_cloud, streamed_text};

const LIST_QUESTION: &str = "What are the most effective ways to deal with stress?";
const CODE_QUESTION: &str = "Implement a binary search algorithm in Python.";

async fn whole(gateway: &Gateway, body: &Value, mode: &str) -> (String, Value) {
    let response = gateway.post("/v1/chat/completions", body, &[("x-pice-mode", mode)]).await;
    assert_eq!(response.status(), 200);
    let header = response.headers()["x-pice-mode"].to_str().unwrap().to_owned();
    (header, response.json().await.unwrap())
}

async fn streamed(gateway: &Gateway, body: &Value, mode: &str) -> (String, Vec<Value>) {
    let response = gateway.post("/v1/chat/completions", body, &[("x-pice-mode", mode)]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let header = response.headers()["x-pice-mode"].to_str().unwrap().to_owned();
    (header, events(&response.text().await.unwrap()))
}

/// The `pice` field of the chunk that carries the finish reason.
fn final_pice(events: &[Value]) -> &Value {
    let last = events.iter().find(|e| e["choices"][0]["finish_reason"].is_string()).expect("a finish chunk");
    &last["pice"]
}

/// Checks that `text` is points `1. ` to `n. ` in order, each on its own line.
fn assert_numbered_in_order(text: &str, points: usize) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), points, "{text}");
    for (index, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("{}. ", index + 1)), "line {index}: {line}");
        assert!(line.len() > 10, "an expanded point, not a heading: {line}");
    }
}

#[tokio::test]
async fn cloud_mode_answers_whole_and_streamed_with_the_same_text() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(4, 4, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Auto)).await;

    let (header, body) = whole(&gateway, &chat(LIST_QUESTION, false, 3), "cloud").await;
    assert_eq!(header, "cloud");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        (body["pice"]["mode"].as_str(), body["pice"]["reason"].as_str()),
        (Some("cloud"), Some("requested"))
    );
    let text = body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    assert!(!text.is_empty());
    assert_eq!(body["usage"]["completion_tokens"], 200, "the simulated cloud writes prose up to max_tokens");

    let (header, chunks) = streamed(&gateway, &chat(LIST_QUESTION, true, 3), "cloud").await;
    assert_eq!(header, "cloud");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks.last().unwrap(), &Value::String("[DONE]".into()));
    assert_eq!(streamed_text(&chunks), text);
    assert_eq!(final_pice(&chunks)["mode"], "cloud");
}

#[tokio::test]
async fn a_cloud_only_answer_read_whole_is_asked_of_the_cloud_whole() {
    const PROSE: &str = "Tides follow the moon.";
    let cloud = fixed_cloud(PROSE).await;
    let edge = Edge::start(1, 1, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Cloud)).await;

    let (_, body) = whole(&gateway, &chat(CODE_QUESTION, false, 1), "cloud").await;
    assert_eq!(body["choices"][0]["message"]["content"], PROSE);
    assert_eq!(
        (body["usage"]["completion_tokens"].as_u64(), body["pice"]["cloud_tokens"].as_u64()),
        (Some(9), Some(9))
    );
    let (_, chunks) = streamed(&gateway, &chat(CODE_QUESTION, true, 1), "cloud").await;
    assert_eq!(streamed_text(&chunks), PROSE);
    let streams: Vec<Value> =
        cloud.requests.lock().unwrap().iter().map(|(_, body)| body["stream"].clone()).collect();
    assert_eq!(streams, [false, true], "whole for the whole answer, streamed for the stream");
}

#[tokio::test]
async fn progressive_mode_streams_points_in_order_and_matches_the_whole_answer() {
    let cloud = sim_cloud(1.0).await;
    let (first, second) = (Edge::start(4, 4, 1.0).await, Edge::start(4, 4, 1.0).await);
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&first, &second], RoutingMode::Auto)).await;
    gateway.wait_ready().await;

    let (header, body) = whole(&gateway, &chat(LIST_QUESTION, false, 5), "progressive").await;
    assert_eq!(header, "progressive");
    let pice = &body["pice"];
    assert_eq!((pice["mode"].as_str(), pice["degraded"].as_bool()), (Some("progressive"), Some(false)));
    assert_eq!(pice["points"], 4, "the simulated cloud writes as many points as asked for");
    assert_eq!(pice["fallbacks"], 0);
    assert!(pice["edge_tokens"].as_u64().unwrap() > 0 && pice["cloud_tokens"].as_u64().unwrap() > 0);
    let text = body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    assert_numbered_in_order(&text, 4);

    let (header, chunks) = streamed(&gateway, &chat(LIST_QUESTION, true, 5), "progressive").await;
    assert_eq!(header, "progressive");
    assert_eq!(streamed_text(&chunks), text, "same seed, same answer, streamed or not");
    assert_eq!(final_pice(&chunks)["points"], 4);
    assert!(
        gateway
            .metric(r#"pice_gateway_requests_total{mode="progressive",outcome="ok",pool="assistant"}"#)
            .await
            >= 2.0
    );
    assert!(gateway.metric(r#"pice_gateway_edge_tokens_total{pool="assistant"}"#).await > 0.0);
}

#[tokio::test]
async fn auto_mode_sends_list_questions_progressive_and_code_to_the_cloud() {
    let cloud = sim_cloud(20.0).await;
    let edge = Edge::start(8, 8, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Auto)).await;
    gateway.wait_ready().await;

    let (header, body) = whole(&gateway, &chat(LIST_QUESTION, false, 1), "auto").await;
    assert_eq!(header, "progressive", "{}", body["pice"]);
    assert_eq!(
        (body["pice"]["requested"].as_str(), body["pice"]["reason"].as_str()),
        (Some("auto"), Some("progressive_faster"))
    );
    let (header, chunks) = streamed(&gateway, &chat(CODE_QUESTION, true, 1), "auto").await;
    assert_eq!(header, "cloud");
    assert_eq!(final_pice(&chunks)["reason"], "unsuitable");
}

#[tokio::test]
async fn the_head_point_streams_token_by_token_before_the_slowest_point_is_done() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(8, 8, 40.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;

    let started = Instant::now();
    let response = gateway.post("/v1/chat/completions", &chat(LIST_QUESTION, true, 9), &[]).await;
    let mut body = response.bytes_stream();
    let (mut text, mut first_text_at, mut head_chunks) = (String::new(), None, 0);
    let mut buffer = String::new();
    while let Some(bytes) = body.next().await {
        buffer.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
        for event in events(&std::mem::take(&mut buffer)) {
            let delta = event["choices"][0]["delta"]["content"].as_str().unwrap_or_default().to_owned();
            if delta.is_empty() {
                continue;
            }
            first_text_at.get_or_insert_with(|| started.elapsed());
            if !text.contains("\n2. ") && !delta.contains("\n2. ") {
                head_chunks += 1;
            }
            text.push_str(&delta);
        }
    }
    let total = started.elapsed();
    let first = first_text_at.unwrap();
    assert!(head_chunks >= 5, "the head point arrives token by token: {head_chunks} chunks");
    assert!(first < total / 3, "first text after {first:?} of {total:?}");
    assert!(total > Duration::from_millis(400), "every point takes a while at 40 ms a token: {total:?}");
    assert_eq!(text.lines().count(), 4);
}

#[tokio::test]
async fn text_completions_answer_in_both_modes() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(4, 4, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;
    let request = |stream| serde_json::json!({"model": "llama-test", "prompt": LIST_QUESTION, "max_tokens": 120, "seed": 4, "stream": stream});

    let response = gateway.post("/v1/completions", &request(false), &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["object"].as_str(), body["model"].as_str()),
        (Some("text_completion"), Some("llama-test"))
    );
    let text = body["choices"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("1. "), "{text}");

    let response = gateway.post("/v1/completions", &request(true), &[("x-pice-mode", "cloud")]).await;
    let chunks = events(&response.text().await.unwrap());
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    assert!(!streamed.is_empty() && !streamed.starts_with("1. "), "cloud-only prose: {streamed}");
    assert_eq!(chunks.last().unwrap(), &Value::String("[DONE]".into()));
}

#[tokio::test]
async fn an_ensemble_expands_every_point_twice_and_keeps_one_candidate() {
    let cloud = sim_cloud(1.0).await;
    let (first, second) = (Edge::start(8, 8, 1.0).await, Edge::start(8, 8, 1.0).await);
    let mut setup = Setup::new(&cloud.url, &[&first, &second], RoutingMode::Progressive);
    setup.routing.ensemble.candidates = 2;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;

    let response = gateway.post("/v1/chat/completions", &chat(LIST_QUESTION, false, 2), &[]).await;
    let body: Value = response.json().await.unwrap();
    let (pice, usage) = (&body["pice"], &body["usage"]);
    let tokens = |field: &str| pice[field].as_u64().unwrap();
    assert_eq!(
        usage["completion_tokens"].as_u64(),
        Some(tokens("cloud_tokens") + tokens("edge_tokens")),
        "{body}"
    );
    assert_eq!(
        usage["prompt_tokens"].as_u64(),
        Some(tokens("cloud_prompt_tokens") + tokens("edge_prompt_tokens"))
    );
    let kept = body["choices"][0]["message"]["content"].as_str().unwrap().split_whitespace().count() as u64;
    assert!(
        tokens("edge_tokens") > kept,
        "two candidates per point were written, one kept: {pice}, {kept} words"
    );
    assert_numbered_in_order(body["choices"][0]["message"]["content"].as_str().unwrap(), 4);
    let expansions = r#"pice_edge_expansion_seconds_count{model="test-model-simulated"}"#;
    let on_first = sample(&first.metrics().await, expansions);
    let on_second = sample(&second.metrics().await, expansions);
    assert_eq!((on_first, on_second), (Some(4.0), Some(4.0)), "each point on both replicas");
}
