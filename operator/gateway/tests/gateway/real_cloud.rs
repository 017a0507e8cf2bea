//! The gateway in front of a real cloud model server: llama.cpp's OpenAI-compatible server
//! (llama-cpp-python's `llama_cpp.server`) with SmolLM2-135M. JSON mode comes back as valid JSON
//! (llama.cpp's grammar), log-probabilities come back, a prompt over the context is the server's
//! own 400, and progressive mode runs on a sketch the real model wrote, expanded by an edge agent
//! whose `openai` backend uses a second such server. Ignored in the plain test run: `make llama`
//! builds the server's venv, fetches the model and runs them.

#[path = "../../../../edge-agent/agent/tests/common/llama_server.rs"]
mod llama_server;

use llama_server::{LlamaServer, MODEL};
use pice_api::RoutingMode;
use serde_json::{Value, json};

use crate::harness::{Edge, Gateway, POOL, Setup};

/// The server's root URL (the gateway and the agent add `/v1`).
fn root(server: &LlamaServer) -> String {
    server.base_url.trim_end_matches("/v1").to_owned()
}

async fn gateway(server: &LlamaServer, edge: &Edge, mode: RoutingMode) -> Gateway {
    let mut setup = Setup::new(&root(server), &[edge], mode);
    // One llama.cpp server on two cores answers the sketch and every point one after another.
    setup.routing.expansion.deadline_ms = 60_000;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;
    gateway
}

async fn answer(gateway: &Gateway, request: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let response = gateway.post("/v1/chat/completions", request, headers).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
#[ignore = "needs llama-cpp-python's server and SmolLM2: run `make llama`"]
async fn json_mode_and_logprobs_pass_through_to_a_real_server_and_a_long_prompt_is_its_400() {
    let server = LlamaServer::start(&[]).await;
    let edge = Edge::start(2, 2, 1.0).await;
    let gateway = gateway(&server, &edge, RoutingMode::Auto).await;

    let question = "Describe a cat as a JSON object with the keys name and colour.";
    let request = json!({"model": POOL, "messages": [{"role": "user", "content": question}],
        "response_format": {"type": "json_object"}, "max_tokens": 96, "temperature": 0, "seed": 1});
    let (status, body) = answer(&gateway, &request, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["pice"]["reason"].as_str(), body["pice"]["field"].as_str()),
        (Some("contract"), Some("response_format"))
    );
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("not JSON ({e}): {content}"));
    assert!(parsed.is_object(), "{parsed}");

    let request = json!({"model": POOL, "messages": [{"role": "user", "content": "Say hello."}],
        "logprobs": true, "top_logprobs": 2, "max_tokens": 8, "seed": 1});
    let (status, body) = answer(&gateway, &request, &[]).await;
    assert_eq!(status, 200, "{body}");
    let tokens = body["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert!(!tokens.is_empty(), "{body}");
    for token in tokens {
        assert!(token["logprob"].as_f64().unwrap() <= 0.0, "{token}");
        assert!(token["top_logprobs"].as_array().unwrap().len() >= 2, "{token}");
    }

    let long = "tide ".repeat(3000);
    let request = json!({"model": POOL, "messages": [{"role": "user", "content": long}], "max_tokens": 8});
    let (status, body) = answer(&gateway, &request, &[("x-pice-mode", "cloud")]).await;
    assert_eq!(status, 400, "the server's own status, not a 503: {body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum context length"), "{body}");
}

#[tokio::test]
#[ignore = "needs llama-cpp-python's server and SmolLM2: run `make llama`"]
async fn a_real_model_sketches_and_an_agent_on_a_real_model_server_expands_the_points() {
    // Two servers, as cloud and edge are: llama-cpp-python answers one request at a time, even
    // `GET /v1/models`, so an agent sharing the cloud's server would look down while it sketches.
    let (server, edge_server) = tokio::join!(LlamaServer::start(&[]), LlamaServer::start(&[]));
    let edge = Edge::openai(&root(&edge_server), MODEL).await;
    let gateway = gateway(&server, &edge, RoutingMode::Progressive).await;

    let question = "What are the main benefits of regular exercise?";
    let request = json!({"model": POOL, "messages": [{"role": "user", "content": question}],
        "max_tokens": 96, "temperature": 0.2, "seed": 3});
    let (status, body) = answer(&gateway, &request, &[]).await;
    assert_eq!(status, 200, "{body}\nthe server's log:\n{}", server.log());
    let pice = &body["pice"];
    let edge_metrics = edge.metrics().await;
    assert_eq!(
        (pice["mode"].as_str(), pice["fallbacks"].as_u64()),
        (Some("progressive"), Some(0)),
        "{body}\nthe agent's metrics:\n{edge_metrics}"
    );
    let points = pice["points"].as_u64().unwrap();
    assert!(points >= 2, "a real sketch of several points: {body}");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    for number in 1..=points {
        assert!(text.contains(&format!("{number}. ")), "point {number} in order: {text}");
    }
    assert!(
        pice["edge_tokens"].as_u64().unwrap() > 0 && pice["cloud_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
    eprintln!("a real progressive answer: {text}");
}

#[tokio::test]
#[ignore = "needs llama-cpp-python's server and SmolLM2: run `make llama`"]
async fn whether_a_real_model_sketches_or_answers_directly_the_client_gets_one_whole_answer() {
    let (server, edge_server) = tokio::join!(LlamaServer::start(&[]), LlamaServer::start(&[]));
    let edge = Edge::openai(&root(&edge_server), MODEL).await;
    let gateway = gateway(&server, &edge, RoutingMode::Progressive).await;

    let questions = [
        "Write a Python function that returns the sum of a list of numbers.",
        "Calculate 17 times 23.",
        "What are some tips for a good night's sleep?",
    ];
    let mut declined = 0;
    for question in questions {
        let request = json!({"model": POOL, "messages": [{"role": "user", "content": question}],
            "max_tokens": 96, "temperature": 0, "seed": 5});
        let (status, body) = answer(&gateway, &request, &[]).await;
        assert_eq!(status, 200, "{body}\nthe server's log:\n{}", server.log());
        let pice = &body["pice"];
        let text = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(!text.trim().is_empty(), "never an empty answer: {body}");
        let completion = body["usage"]["completion_tokens"].as_u64().unwrap();
        match pice["reason"].as_str() {
            Some("declined") => {
                declined += 1;
                assert_eq!(
                    (pice["mode"].as_str(), pice["points"].as_u64()),
                    (Some("cloud"), Some(0)),
                    "{body}"
                );
                assert_eq!(
                    completion,
                    pice["cloud_tokens"].as_u64().unwrap(),
                    "one cloud generation: {body}"
                );
                assert!(!text.trim_start().starts_with("1."), "a direct answer, not a sketch: {text}");
            }
            _ => {
                assert_eq!(pice["mode"], "progressive", "{body}");
                assert!(text.starts_with("1. "), "{text}");
            }
        }
        eprintln!("{question} -> {} ({} tokens): {text}", pice["reason"], completion);
    }
    // At temperature 0 SmolLM2-135M answers the code and the arithmetic question directly and
    // sketches the tips; a model may differ on one of them, but not decline everything or nothing.
    assert!((1..questions.len()).contains(&declined), "declined {declined} of {}", questions.len());
    let metrics = reqwest::get(format!("{}/metrics", gateway.url)).await.unwrap().text().await.unwrap();
    let counted = format!("pice_gateway_declined_sketches_total{{pool=\"{POOL}\"}} {declined}");
    assert!(metrics.lines().any(|line| line == counted), "{counted} in\n{metrics}");
}
