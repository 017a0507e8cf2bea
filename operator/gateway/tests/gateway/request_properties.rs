//! Property tests of the request path through the real HTTP API: arbitrary bytes, arbitrary
//! JSON and valid requests with arbitrary extra fields never crash the gateway or get a 5xx; a
//! refusal is always a 4xx in OpenAI's error shape, and a cloud-only request that is answered
//! reached the cloud as it was sent, with only `model` mapped. `PROPTEST_CASES` sets the cases
//! (256 in `cargo test`, many more in `make fuzz`).

use std::sync::Arc;

use pice_api::RoutingMode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::harness::{CLOUD_MODEL, Gateway, POOL, Reply, Server, Setup, client, recording_cloud};

/// A cloud that answers every request with a short numbered list, whole or streamed.
async fn listing_cloud() -> Server {
    recording_cloud(|_, request| {
        let text = "1. First\n2. Second";
        let usage = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        if request["stream"] == true {
            let chunk = |delta: Value, finish: Value| json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            let events = [chunk(json!({"content": text}), Value::Null), chunk(json!({}), json!("stop"))];
            Reply::Events(events.iter().map(Value::to_string).chain(["[DONE]".to_owned()]).collect())
        } else {
            let message = json!({"role": "assistant", "content": text});
            Reply::Whole(json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}))
        }
    })
    .await
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Field names a client may send: the ones the gateway reads or judges, and any other.
fn field_name() -> impl Strategy<Value = String> {
    let known = [
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "n",
        "tools",
        "tool_choice",
        "response_format",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "audio",
        "modalities",
        "user",
        "prompt",
        "echo",
    ];
    prop_oneof![prop::sample::select(known.to_vec()).prop_map(str::to_owned), "[a-z_]{1,10}"]
}

/// A valid chat request with some fields added or replaced by arbitrary values.
fn mutated_chat() -> impl Strategy<Value = Value> {
    prop::collection::vec((field_name(), any_json()), 0..4).prop_map(|changes| {
        let mut body = json!({"model": POOL, "messages": [{"role": "user", "content": "Name two rivers."}]});
        let fields = body.as_object_mut().expect("an object");
        for (name, value) in changes {
            fields.insert(name, value);
        }
        body
    })
}

/// A request body: bytes, or any JSON, or a mutated valid request.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|value| value.to_string().into_bytes()),
        mutated_chat().prop_map(|value| value.to_string().into_bytes()),
    ]
}

fn mode() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![None, Some("auto"), Some("cloud"), Some("progressive"), Some("edge")])
}

struct Sent {
    status: u16,
    body: String,
}

async fn send(gateway: &Gateway, path: &str, body: Vec<u8>, mode: Option<&str>) -> Sent {
    let mut request =
        client().post(format!("{}{path}", gateway.url)).header("content-type", "application/json");
    if let Some(mode) = mode {
        request = request.header("x-pice-mode", mode);
    }
    let response = request.body(body).send().await.expect("the gateway answers every request");
    Sent { status: response.status().as_u16(), body: response.text().await.expect("a whole body") }
}

/// Checks what any answer must be: not a 5xx, and a refusal in OpenAI's shape.
fn check_answer(sent: &Sent) -> Result<(), TestCaseError> {
    prop_assert!(sent.status < 500, "a 5xx: {} {}", sent.status, sent.body);
    if sent.status >= 400 {
        let error: Value = serde_json::from_str(&sent.body)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", sent.body)))?;
        prop_assert!(
            error["error"]["message"].is_string() && error["error"]["type"].is_string(),
            "{}",
            sent.body
        );
    }
    Ok(())
}

fn runtime() -> Arc<tokio::runtime::Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime"),
    )
}

/// A listing cloud and an edge-less gateway in `mode` in front of it.
async fn started(mode: RoutingMode) -> (Server, Gateway) {
    let cloud = listing_cloud().await;
    let mut setup = Setup::new(&cloud.url, &[], mode);
    setup.ready_without_edge = true;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    (cloud, gateway)
}

#[test]
fn properties_any_body_on_either_api_gets_an_answer_or_an_openai_shaped_4xx() {
    let runtime = runtime();
    let (_cloud, gateway) = runtime.block_on(started(RoutingMode::Auto));
    let paths = prop::sample::select(vec!["/v1/chat/completions", "/v1/completions"]);
    TestRunner::new(Config::default())
        .run(&(paths, any_body(), mode()), |(path, body, mode)| {
            check_answer(&runtime.block_on(send(&gateway, path, body, mode)))
        })
        .unwrap();
}

#[test]
fn properties_an_answered_cloud_only_request_reached_the_cloud_as_sent() {
    let runtime = runtime();
    let (cloud, gateway) = runtime.block_on(started(RoutingMode::Cloud));
    TestRunner::new(Config::default())
        .run(&mutated_chat(), |body| {
            let before = cloud.requests.lock().unwrap().len();
            let sent =
                runtime.block_on(send(&gateway, "/v1/chat/completions", body.to_string().into_bytes(), None));
            check_answer(&sent)?;
            let requests = cloud.requests.lock().unwrap();
            if sent.status == 200 {
                let mut expected: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
                expected.insert("model".into(), json!(CLOUD_MODEL));
                prop_assert_eq!(requests.len(), before + 1);
                prop_assert_eq!(&requests[before].1, &Value::Object(expected));
            } else {
                prop_assert_eq!(requests.len(), before, "a refused request never reaches the cloud");
            }
            Ok(())
        })
        .unwrap();
}
