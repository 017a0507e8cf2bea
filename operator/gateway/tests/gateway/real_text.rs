//! The real-text path: SmolLM2-135M (a real GGUF model through the edge agent's `llama`
//! backend, as a process) expands the points of a sketch from an OpenAI-compatible cloud
//! server, through the gateway. Ignored in the plain test run: `make llama` fetches the model,
//! builds the agent with `--features llama` and runs it with `PICE_MODEL_PATH` set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pice_api::RoutingMode;
use tokio::process::{Child, Command};

use crate::harness::{Gateway, Setup, chat, sim_cloud};

/// The `pice-edge-agent` binary next to this test binary.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().join("pice-edge-agent")
}

/// Starts a llama-backed agent on a free port and waits until its gRPC port accepts.
async fn llama_agent(model: &str) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(agent_binary())
        .args([
            "--backend",
            "llama",
            "--model-path",
            model,
            "--model",
            "smollm2-135m-instruct",
            "--slots",
            "2",
        ])
        .args(["--listen", &addr.to_string(), "--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (child, addr);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the llama edge agent did not listen on {addr} (was it built with --features llama?)");
}

#[tokio::test]
#[ignore = "needs SmolLM2 and a llama build of the agent: run `make llama`"]
async fn a_progressive_answer_is_expanded_by_a_real_small_model() {
    let model = std::env::var("PICE_MODEL_PATH")
        .unwrap_or_else(|_| panic!("PICE_MODEL_PATH is not set: run `make llama`, which fetches SmolLM2"));
    let cloud = sim_cloud(1.0).await;
    let (_agent, addr) = llama_agent(&model).await;
    let mut setup = Setup::new(&cloud.url, &[], RoutingMode::Progressive);
    setup.edges = vec![addr.to_string()];
    setup.routing.expansion.deadline_ms = 60_000;
    setup.routing.expansion.max_tokens_per_point = 40;
    setup.routing.fallback.to_cloud = false;
    let gateway = Gateway::start(setup).await;
    gateway.wait_ready().await;

    let body = chat("What are the most effective ways to deal with stress?", false, 7);
    let response = gateway.post("/v1/chat/completions", &body, &[("x-pice-mode", "progressive")]).await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(answer["pice"]["mode"], "progressive", "{answer}");
    assert_eq!(answer["pice"]["degraded"], false, "every point expanded on the edge: {answer}");
    let points = answer["pice"]["points"].as_u64().unwrap();
    assert!(points >= 2, "{answer}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() as u64 >= points, "{text}");
    for n in 1..=points {
        assert!(text.contains(&format!("{n}. ")), "point {n} in order: {text}");
    }
    assert!(text.split_whitespace().count() as u64 > points * 8, "real expansions, not bare points: {text}");
    assert_eq!(answer["pice"]["fallbacks"], 0, "no point fell back: {answer}");
    assert!(answer["pice"]["edge_tokens"].as_u64().unwrap() > 0, "the edge model wrote: {answer}");
    eprintln!("{text}");
}
