//! Bad requests get OpenAI-shaped 4xx errors and the gateway keeps serving; models, probes and
//! metrics.

use pice_api::RoutingMode;
use pice_gateway::auth::ApiKeys;
use serde_json::Value;

use crate::harness::{CLOUD_MODEL, Edge, Gateway, POOL, Setup, chat, client, sim_cloud};

const QUESTION: &str = "How can I improve my time management skills?";

/// A bad request and the error it must get.
struct Case<'a> {
    name: &'a str,
    body: Vec<u8>,
    headers: &'a [(&'a str, &'a str)],
    status: u16,
    code: Option<&'a str>,
}

impl<'a> Case<'a> {
    fn new(
        name: &'a str,
        body: &[u8],
        headers: &'a [(&'a str, &'a str)],
        status: u16,
        code: Option<&'a str>,
    ) -> Self {
        Self { name, body: body.to_vec(), headers, status, code }
    }
}

/// Sends `body` as raw bytes with `headers`; returns the status and the JSON error.
async fn raw(gateway: &Gateway, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request =
        client().post(format!("{}{path}", gateway.url)).header("content-type", "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_openai_error(body: &Value, kind: &str) {
    let error = body["error"].as_object().unwrap_or_else(|| panic!("not an OpenAI error: {body}"));
    assert_eq!(error["type"], kind, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error.contains_key("param") && error.contains_key("code"), "{body}");
}

#[tokio::test]
async fn bad_requests_get_the_right_4xx_in_openai_shape_and_the_gateway_keeps_serving() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(2, 2, 1.0).await;
    let mut setup = Setup::new(&cloud.url, &[&edge], RoutingMode::Cloud);
    setup.keys = ApiKeys::load(None, Some("sk-right")).unwrap();
    let gateway = Gateway::start(setup).await;
    let key = [("authorization", "Bearer sk-right")];
    let good = serde_json::to_vec(&chat(QUESTION, false, 1)).unwrap();

    let unknown_model = br#"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#;
    let wrong_key = [("authorization", "Bearer sk-wrong")];
    let bad_mode = [key[0], ("x-pice-mode", "edge")];
    let cases = [
        Case::new("malformed JSON", b"{\"model\": \"assistant\", \"messages\": [", &key, 400, None),
        Case::new("missing messages", br#"{"model": "assistant"}"#, &key, 400, None),
        Case::new("unknown model", unknown_model, &key, 404, Some("model_not_found")),
        Case::new("body too large", &[b' '; 70 * 1024], &key, 413, Some("request_too_large")),
        Case::new("missing API key", &good, &[], 401, Some("invalid_api_key")),
        Case::new("wrong API key", &good, &wrong_key, 401, Some("invalid_api_key")),
        Case::new("unknown mode", &good, &bad_mode, 400, None),
    ];
    for case in cases {
        let (status, error) = raw(&gateway, "/v1/chat/completions", case.body, case.headers).await;
        assert_eq!(status, case.status, "{}: {error}", case.name);
        assert_openai_error(&error, "invalid_request_error");
        if let Some(code) = case.code {
            assert_eq!(error["error"]["code"], code, "{}", case.name);
        }
    }
    let (_, missing) =
        raw(&gateway, "/v1/chat/completions", br#"{"model": "assistant"}"#.to_vec(), &key).await;
    assert_eq!(missing["error"]["param"], "messages");
    let response = client().get(format!("{}/v1/nothing", gateway.url)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_openai_error(&response.json().await.unwrap(), "invalid_request_error");

    let (status, answer) = raw(&gateway, "/v1/chat/completions", good, &key).await;
    assert_eq!(status, 200, "the gateway still serves: {answer}");
    assert!(!answer["choices"][0]["message"]["content"].as_str().unwrap().is_empty());
    let rejected = gateway
        .metric(r#"pice_gateway_requests_total{mode="none",outcome="rejected",pool="assistant"}"#)
        .await;
    assert_eq!(rejected, 8.0);
}

#[tokio::test]
async fn models_probes_and_metrics_are_served() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(2, 2, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Auto)).await;
    gateway.wait_ready().await;

    let models: Value =
        client().get(format!("{}/v1/models", gateway.url)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, [POOL, CLOUD_MODEL]);
    let health = client().get(format!("{}/healthz", gateway.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let response = gateway.post("/v1/chat/completions", &chat(QUESTION, false, 1), &[]).await;
    assert_eq!(response.status(), 200);
    let metrics =
        client().get(format!("{}/metrics", gateway.url)).send().await.unwrap().text().await.unwrap();
    for name in [
        "pice_gateway_requests_total",
        "pice_gateway_request_duration_seconds_bucket",
        "pice_gateway_time_to_first_token_seconds_bucket",
        "pice_gateway_sketch_duration_seconds_bucket",
        "pice_gateway_expansion_duration_seconds_bucket",
        "pice_gateway_sketch_points_bucket",
        "pice_gateway_cloud_tokens_total",
        "pice_gateway_edge_tokens_total",
        "pice_gateway_edge_endpoints",
    ] {
        assert!(metrics.contains(&format!("{name}{{")), "{name} is exported");
    }
    assert!(metrics.contains(r#"pice_gateway_edge_endpoints{pool="assistant"} 1"#));
}

#[tokio::test]
async fn readiness_waits_for_an_edge_agent_unless_the_pool_is_cloud_only() {
    let cloud = sim_cloud(1.0).await;
    let progressive = Gateway::start(Setup::new(&cloud.url, &[], RoutingMode::Auto)).await;
    let cloud_only = Gateway::start(Setup::new(&cloud.url, &[], RoutingMode::Cloud)).await;
    cloud_only.wait_ready().await;
    let ready = client().get(format!("{}/readyz", progressive.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "no edge agent is known yet");
}

#[tokio::test]
async fn a_gateway_for_edge_pools_that_may_scale_to_zero_is_ready_without_an_edge() {
    let cloud = sim_cloud(1.0).await;
    let setup = Setup { ready_without_edge: true, ..Setup::new(&cloud.url, &[], RoutingMode::Auto) };
    Gateway::start(setup).await.wait_ready().await;
}
