//! The sketch as it streams: the first point is expanded and reaches the client while the
//! cloud is still writing the sketch, each point's expansion prompt shows the outline up to
//! that point (so consecutive points share their prompt's prefix), and a cloud that answers
//! directly instead of sketching has that answer streamed as cloud-only with no second call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pice_api::RoutingMode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::harness::{
    Edge, Gateway, Server, Setup, chat, events, fixed_cloud, serve, sim_cloud, streamed_text,
};

/// A cloud whose streamed sketch sends `head`, then waits for the returned sender before it
/// sends `tail` and ends.
async fn held_sketch_cloud(head: &'static str, tail: &'static str) -> (Server, oneshot::Sender<()>) {
    use axum::Json;
    use axum::response::IntoResponse;
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let sketch = move |Json(_request): Json<Value>| {
        let released = released.lock().unwrap().take();
        async move {
            let chunk = |content: &str| json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
            let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}});
            let body = async_stream::stream! {
                yield Ok::<_, std::convert::Infallible>(format!("data: {}\n\n", chunk(head)));
                if let Some(released) = released {
                    let _ = released.await;
                }
                yield Ok(format!("data: {}\n\n", chunk(tail)));
                yield Ok(format!("data: {end}\n\ndata: [DONE]\n\n"));
            };
            ([("content-type", "text/event-stream")], axum::body::Body::from_stream(body)).into_response()
        }
    };
    let models = || async { Json(json!({"object": "list", "data": []})) };
    let server = serve(
        axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(sketch))
            .route("/v1/models", axum::routing::get(models)),
    )
    .await;
    (server, release)
}

#[tokio::test]
async fn the_first_point_reaches_the_client_while_the_cloud_still_writes_the_sketch() {
    let (cloud, release) = held_sketch_cloud(
        "Here is the outline:\n1. Rivers carry dissolved minerals\n2. Evap",
        "oration concentrates the salt\n3. Vents add chlorine\n",
    )
    .await;
    let model_server = fixed_cloud("It is so.").await;
    let edge = Edge::openai(&model_server.url, "slm").await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;

    let response = gateway.post("/v1/chat/completions", &chat("Why is the sea salty?", true, 3), &[]).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut buffer = String::new();
    let head = tokio::time::timeout(Duration::from_secs(20), async {
        while !text.contains("It is so.") {
            buffer.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
            let (complete, rest) = buffer
                .rsplit_once("\n\n")
                .map_or((String::new(), buffer.clone()), |(c, r)| (c.to_owned() + "\n\n", r.to_owned()));
            buffer = rest;
            for event in events(&complete) {
                text.push_str(event["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
            }
        }
    })
    .await;
    assert!(head.is_ok(), "the head point never arrived while the sketch was held: {text:?}");
    assert_eq!(text, "1. It is so.");
    let prompts = || -> Vec<String> {
        let requests = model_server.requests.lock().unwrap();
        requests.iter().map(|(_, body)| body["messages"][1]["content"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(prompts().len(), 1, "only the first point was complete: {:?}", prompts());

    release.send(()).unwrap();
    while let Some(bytes) = body.next().await {
        buffer.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
    }
    for event in events(&buffer) {
        text.push_str(event["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
    }
    assert_eq!(text, "1. It is so.\n2. It is so.\n3. It is so.");

    let mut prompts = prompts();
    prompts.sort_by_key(String::len);
    assert!(prompts[0].ends_with("Outline:\n1. Rivers carry dissolved minerals\n\nExpand only point 1: Rivers carry dissolved minerals"), "{}", prompts[0]);
    for pair in prompts.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let shared = &earlier[..earlier.rfind("\n\nExpand only point").unwrap()];
        assert!(
            later.starts_with(shared),
            "a later point's prompt extends the earlier one's prefix:\n{earlier}\n---\n{later}"
        );
    }
    assert!(prompts[2].contains("3. Vents add chlorine\n\nExpand only point 3"));
}

#[tokio::test]
async fn a_cloud_that_answers_directly_is_streamed_as_cloud_only_with_one_cloud_call() {
    let direct = "Use slicing.\nIn Python, `xs[::-1]` returns the list reversed.";
    let cloud = fixed_cloud(direct).await;
    let edge = Edge::start(2, 2, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;

    for stream in [true, false] {
        let response = gateway
            .post("/v1/chat/completions", &chat("How do I reverse a list in Python?", stream, 1), &[])
            .await;
        assert_eq!(response.status(), 200);
        let (text, pice) = if stream {
            let events = events(&response.text().await.unwrap());
            let pice = events.iter().rev().find(|e| e["pice"].is_object()).unwrap()["pice"].clone();
            (streamed_text(&events), pice)
        } else {
            let body: Value = response.json().await.unwrap();
            (body["choices"][0]["message"]["content"].as_str().unwrap().to_owned(), body["pice"].clone())
        };
        assert_eq!(text, direct, "the direct answer, nothing lost or repeated");
        assert_eq!(
            (pice["mode"].as_str(), pice["reason"].as_str(), pice["points"].as_u64()),
            (Some("cloud"), Some("declined"), Some(0)),
            "{pice}"
        );
        assert_eq!(pice["cloud_tokens"], 9, "the cloud's usage");
    }
    assert_eq!(cloud.requests.lock().unwrap().len(), 2, "one cloud call per answer");
    let declined = r#"pice_gateway_declined_sketches_total{pool="assistant"}"#;
    assert_eq!(gateway.metric(declined).await, 2.0);
}

#[tokio::test]
async fn the_simulated_cloud_declines_to_sketch_code_and_sketches_the_rest() {
    let cloud = sim_cloud(1.0).await;
    let edge = Edge::start(4, 4, 1.0).await;
    let gateway = Gateway::start(Setup::new(&cloud.url, &[&edge], RoutingMode::Progressive)).await;
    gateway.wait_ready().await;

    let body = |question| chat(question, false, 4);
    let response = gateway
        .post("/v1/chat/completions", &body("Write a Python function that merges two sorted lists."), &[])
        .await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (answer["pice"]["mode"].as_str(), answer["pice"]["reason"].as_str()),
        (Some("cloud"), Some("declined")),
        "{}",
        answer["pice"]
    );
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().len() > 20);
    let response = gateway.post("/v1/chat/completions", &body("How can I sleep better?"), &[]).await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["pice"]["mode"], "progressive", "{}", answer["pice"]);
    let completed = r#"pice_sim_requests_completed_total{model="llama-test-simulated"}"#;
    let metrics = reqwest::get(format!("{}/metrics", cloud.url)).await.unwrap().text().await.unwrap();
    let sketches_and_answers = super::harness::sample(&metrics, completed).unwrap();
    assert_eq!(sketches_and_answers, 2.0, "one cloud call each: the direct answer and the sketch");
}
