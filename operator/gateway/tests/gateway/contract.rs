//! The OpenAI contract through the gateway, against a cloud that records what it is sent: a
//! cloud-only request reaches the cloud as the client wrote it and its answer comes back whole;
//! fields only the cloud can honour keep a request off the progressive path (or get a 400 when
//! progressive was demanded); progressive mode carries the client's sampling parameters and
//! conversation to the sketch and to every expansion, and its usage adds up both tiers.

use pice_api::RoutingMode;
use serde_json::{Value, json};

use crate::harness::{CLOUD_MODEL, Edge, Gateway, POOL, Reply, Setup, events, recording_cloud, sample};

/// A whole answer with everything a plain-text answer lacks: a tool call, a refusal field,
/// log-probabilities, two choices and a fingerprint.
fn rich_answer() -> Value {
    let tool_call = json!({"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}});
    json!({
        "id": "chatcmpl-upstream-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": CLOUD_MODEL, "system_fingerprint": "fp_upstream",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls",
             "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [tool_call]},
             "logprobs": {"content": [{"token": "x", "logprob": -0.25, "bytes": [120], "top_logprobs": []}]}},
            {"index": 1, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "It is sunny.", "refusal": null}, "logprobs": null}
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48,
                  "completion_tokens_details": {"reasoning_tokens": 0}}
    })
}

/// Streamed: two choices interleaved, a finish chunk per choice, then usage.
fn rich_chunks() -> Vec<String> {
    let chunk = |choices: Value, usage: Value| {
        json!({"id": "chatcmpl-upstream-2", "object": "chat.completion.chunk", "created": 1,
               "model": CLOUD_MODEL, "system_fingerprint": "fp_upstream", "choices": choices, "usage": usage})
        .to_string()
    };
    vec![
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "A"}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 1, "delta": {"role": "assistant", "content": "B"}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]), Value::Null),
        chunk(json!([{"index": 1, "delta": {}, "finish_reason": "length"}]), Value::Null),
        chunk(json!([]), json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})),
        "[DONE]".to_owned(),
    ]
}

fn rich_cloud() -> impl Fn(&str, &Value) -> Reply + Clone + Send + Sync + 'static {
    |_, request| {
        if request["max_tokens"] == 9999 {
            let error = json!({"error": {"message": "This model's maximum context length is 2048 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
            return Reply::Error(400, error);
        }
        if request["stream"] == true { Reply::Events(rich_chunks()) } else { Reply::Whole(rich_answer()) }
    }
}

fn tool_request(stream: bool) -> Value {
    json!({
        "model": POOL,
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto", "parallel_tool_calls": false, "n": 2, "logprobs": true, "top_logprobs": 1,
        "temperature": 0.25, "top_p": 0.5, "seed": 11, "stop": ["\n\n"], "presence_penalty": 0.5,
        "metadata": {"team": "a"}, "x_vendor_extension": {"keep": [1, 2, 3]},
        "stream": stream
    })
}

async fn started(mode: RoutingMode, cloud: &crate::harness::Server, edges: &[&Edge]) -> Gateway {
    let mut setup = Setup::new(&cloud.url, edges, mode);
    setup.ready_without_edge = edges.is_empty();
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    gateway
}

#[tokio::test]
async fn a_cloud_only_request_reaches_the_cloud_as_sent_and_its_whole_answer_comes_back() {
    let cloud = recording_cloud(rich_cloud()).await;
    let gateway = started(RoutingMode::Auto, &cloud, &[]).await;

    let response = gateway.post("/v1/chat/completions", &tool_request(false), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pice-mode"], "cloud");
    let mut body: Value = response.json().await.unwrap();

    let (path, sent) = cloud.requests.lock().unwrap()[0].clone();
    assert_eq!(path, "/v1/chat/completions");
    let mut expected = tool_request(false);
    expected["model"] = json!(CLOUD_MODEL);
    assert_eq!(sent, expected, "every field, unknown ones too, with only the model mapped");

    let pice = body.as_object_mut().unwrap().remove("pice").unwrap();
    assert_eq!((pice["mode"].as_str(), pice["reason"].as_str()), (Some("cloud"), Some("contract")));
    assert_eq!(pice["field"], "logprobs", "the first field, in name order, that progressive cannot keep");
    assert_eq!((pice["cloud_tokens"].as_u64(), pice["cloud_prompt_tokens"].as_u64()), (Some(17), Some(31)));
    let mut expected = rich_answer();
    expected["model"] = json!(POOL);
    assert_eq!(body, expected, "the answer whole, with the model mapped back");
    let series = format!(r#"pice_gateway_contract_cloud_only_total{{field="logprobs",pool="{POOL}"}}"#);
    assert_eq!(gateway.metric(&series).await, 1.0);
}

#[tokio::test]
async fn a_streamed_cloud_only_answer_is_relayed_chunk_by_chunk() {
    let cloud = recording_cloud(rich_cloud()).await;
    let gateway = started(RoutingMode::Auto, &cloud, &[]).await;

    let response = gateway.post("/v1/chat/completions", &tool_request(true), &[]).await;
    assert_eq!(response.status(), 200);
    let received = events(&response.text().await.unwrap());
    let upstream: Vec<Value> =
        rich_chunks().iter().map(|data| serde_json::from_str(data).unwrap_or_else(|_| json!(data))).collect();
    assert_eq!(received.len(), upstream.len(), "{received:?}");
    for (got, sent) in received.iter().zip(&upstream) {
        let mut got = got.clone();
        if let Some(object) = got.as_object_mut() {
            assert_eq!(object["model"], POOL);
            object["model"] = json!(CLOUD_MODEL);
            let finishes = sent["choices"].as_array().unwrap().iter().any(|c| !c["finish_reason"].is_null());
            let pice = object.remove("pice");
            assert_eq!(pice.is_some(), finishes, "pice rides on each chunk with a finish reason: {got}");
        }
        assert_eq!(&got, sent);
    }
}

#[tokio::test]
async fn an_upstream_4xx_comes_back_with_its_status_and_error() {
    let cloud = recording_cloud(rich_cloud()).await;
    let gateway = started(RoutingMode::Cloud, &cloud, &[]).await;
    for stream in [false, true] {
        let mut request = tool_request(stream);
        request["max_tokens"] = json!(9999);
        let response = gateway.post("/v1/chat/completions", &request, &[]).await;
        assert_eq!(response.status(), 400, "not a 503");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["param"], "messages");
        assert!(body["error"]["message"].as_str().unwrap().contains("maximum context length"));
    }
}

#[tokio::test]
async fn text_completions_pass_through_to_the_completions_api() {
    let cloud = recording_cloud(|_, _| {
        Reply::Whole(json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": CLOUD_MODEL,
            "choices": [{"index": 0, "text": "Say hi\nhi", "finish_reason": "stop",
                         "logprobs": {"tokens": ["hi"], "token_logprobs": [-0.1]}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}))
    })
    .await;
    let gateway = started(RoutingMode::Auto, &cloud, &[]).await;
    let request = json!({"model": POOL, "prompt": "Say hi", "echo": true, "logprobs": 1, "suffix": "!"});
    let body: Value = gateway.post("/v1/completions", &request, &[]).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["text"], "Say hi\nhi");
    assert_eq!(body["choices"][0]["logprobs"]["token_logprobs"][0], -0.1);
    assert_eq!(body["pice"]["field"], "echo");
    let (path, sent) = cloud.requests.lock().unwrap()[0].clone();
    assert_eq!(path, "/v1/completions");
    assert_eq!(
        (sent["echo"].clone(), sent["logprobs"].clone(), sent["suffix"].clone()),
        (json!(true), json!(1), json!("!"))
    );
}

#[tokio::test]
async fn demanding_progressive_for_a_request_it_cannot_keep_is_a_400_naming_the_field() {
    let cloud = recording_cloud(rich_cloud()).await;
    let gateway = started(RoutingMode::Auto, &cloud, &[]).await;
    let cases = [
        (json!({"response_format": {"type": "json_object"}}), "response_format"),
        (json!({"n": 3}), "n"),
        (json!({"tools": [{"type": "function", "function": {"name": "f"}}]}), "tools"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}), "audio"),
        (json!({"reasoning_effort": "low"}), "reasoning_effort"),
    ];
    for (extra, field) in cases {
        let mut request =
            json!({"model": POOL, "messages": [{"role": "user", "content": "List three fruits."}]});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let response =
            gateway.post("/v1/chat/completions", &request, &[("x-pice-mode", "progressive")]).await;
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], field);
        assert_eq!(body["error"]["code"], "unsupported_in_progressive_mode");
        assert!(body["error"]["message"].as_str().unwrap().contains("cannot be answered progressively"));
    }
    assert!(cloud.requests.lock().unwrap().is_empty(), "refused before the cloud was asked");
}

/// A cloud that writes sketches and expands points, for progressive answers.
fn sketching_cloud() -> impl Fn(&str, &Value) -> Reply + Clone + Send + Sync + 'static {
    |_, request| {
        let last =
            request["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
        let text = if last.contains("Expand only point") {
            "Detail of the point."
        } else {
            "1. First point\n2. Second point"
        };
        let chunk = |delta: Value, finish: Value, usage: Value| {
            json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage})
                .to_string()
        };
        let usage = json!({"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45});
        Reply::Events(vec![
            chunk(json!({"content": text}), Value::Null, Value::Null),
            chunk(json!({}), json!("stop"), usage),
            "[DONE]".to_owned(),
        ])
    }
}

#[tokio::test]
async fn progressive_mode_carries_sampling_and_the_conversation_to_sketch_and_expansions() {
    let cloud = recording_cloud(sketching_cloud()).await;
    let edge = Edge::openai(&cloud.url, "edge-model").await;
    let gateway = started(RoutingMode::Progressive, &cloud, &[&edge]).await;
    let request = json!({
        "model": POOL,
        "messages": [
            {"role": "system", "content": "Answer for a beekeeper."},
            {"role": "user", "content": "I keep three hives."},
            {"role": "assistant", "content": "Good to know."},
            {"role": "user", "content": "List ways to prepare them for winter."}
        ],
        "temperature": 0.25, "top_p": 0.5, "presence_penalty": 0.5, "frequency_penalty": 0.75,
        "stop": "###", "seed": 5, "max_tokens": 100, "user": "u-42"
    });
    let response = gateway.post("/v1/chat/completions", &request, &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pice"]["mode"], "progressive", "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "1. Detail of the point.\n2. Detail of the point.");

    let sent = cloud.requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 3, "one sketch and two expansions: {sent:?}");
    for (_, body) in &sent {
        let number = |field: &str| body[field].as_f64().unwrap();
        assert_eq!((number("temperature"), number("top_p")), (0.25, 0.5), "{body}");
        assert_eq!((number("presence_penalty"), number("frequency_penalty")), (0.5, 0.75));
        assert_eq!(body["stop"], json!(["###"]));
    }
    assert_eq!(sent[0].1["user"], "u-42", "the end user goes with the sketch");
    let sketch = &sent[0].1["messages"];
    assert!(sketch[0]["content"].as_str().unwrap().ends_with("Answer for a beekeeper."), "{sketch}");
    let turns: Vec<&str> =
        sketch.as_array().unwrap()[1..].iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(turns, ["I keep three hives.", "Good to know.", "List ways to prepare them for winter."]);
    let expansion = sent[1].1["messages"][1]["content"].as_str().unwrap();
    assert!(
        expansion.starts_with(
            "Context from the client:\nInstructions: Answer for a beekeeper.\nuser: I keep three hives.\n"
        ),
        "{expansion}"
    );

    // Usage: the sketch (40 read, 5 written) and two expansions (40 and 5 each).
    let usage = &body["usage"];
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()), (Some(120), Some(15)));
    let pice = &body["pice"];
    assert_eq!(
        (pice["cloud_prompt_tokens"].as_u64(), pice["edge_prompt_tokens"].as_u64()),
        (Some(40), Some(80))
    );
    assert_eq!((pice["cloud_tokens"].as_u64(), pice["edge_tokens"].as_u64()), (Some(5), Some(10)));
    let agent_tokens = sample(&edge.metrics().await, r#"pice_edge_tokens_total{model="edge-model"}"#);
    assert_eq!(agent_tokens, Some(10.0), "the edge's own count agrees");
}
