//! What the gateway adds in cloud-only pass-through: the same chat completions sent straight to
//! an OpenAI-compatible backend that answers at once (a fixed 32-token answer, no model, no
//! simulated delay), and through `pice-gateway` in `cloud` mode in front of it.
//!
//! Each run sends `REQUESTS` requests from `CONCURRENCY` clients to each target; after one
//! warm-up run, the table shows the median over `RUNS` runs of requests/s, p50 and p99 latency,
//! and what the gateway added.
//! Everything (client, gateway, backend) shares this machine's cores, as a sidecar would.
//!
//! ```sh
//! cargo run --release -p pice-operator --example gateway_overhead
//! ```

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use pice_edge_agent::openai_wire::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice, Delta,
    ModelList, Usage,
};
use pice_operator::api::{RoutingMode, RoutingSpec};
use pice_operator::gateway::auth::ApiKeys;
use pice_operator::gateway::config::{CloudTarget, GatewayConfig};
use pice_operator::gateway::server::{self, Discovery, Settings};
use pice_operator::gateway::state::Limits;
use prometheus::Registry;
use tokio::net::TcpListener;

const RUNS: usize = 5;
const REQUESTS: usize = 400;
const CONCURRENCY: [usize; 2] = [1, 16];
const ANSWER_TOKENS: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pice_edge_agent::crypto::install_default_provider();
    let backend = serve_backend().await?;
    let gateway = serve_gateway(&backend).await?;
    println!("| stream | clients | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for stream in [false, true] {
        for clients in CONCURRENCY {
            let direct = median_of_runs(&backend, stream, clients).await?;
            let through = median_of_runs(&gateway, stream, clients).await?;
            println!(
                "| {stream} | {clients} | backend | {:.0} | {:.2} | {:.2} | | |",
                direct.rate, direct.p50, direct.p99
            );
            println!(
                "| {stream} | {clients} | gateway | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                through.rate,
                through.p50,
                through.p99,
                through.p50 - direct.p50,
                through.p99 - direct.p99
            );
        }
    }
    Ok(())
}

/// One run's figures: requests/s and latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
}

async fn median_of_runs(base: &str, stream: bool, clients: usize) -> anyhow::Result<Figures> {
    run(base, stream, clients).await?;
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(run(base, stream, clients).await?);
    }
    let median = |pick: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Ok(Figures { rate: median(|f| f.rate), p50: median(|f| f.p50), p99: median(|f| f.p99) })
}

async fn run(base: &str, stream: bool, clients: usize) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let body = serde_json::json!({
        "model": "bench",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "stream": stream,
        "max_tokens": ANSWER_TOKENS,
    });
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS / clients);
            for _ in 0..REQUESTS / clients {
                let sent = Instant::now();
                let response = http.post(&url).header("x-pice-mode", "cloud").json(&body).send().await?;
                anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
                response.bytes().await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        })
    });
    let mut latencies: Vec<Duration> = Vec::with_capacity(REQUESTS);
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    Ok(Figures { rate: latencies.len() as f64 / elapsed, p50: percentile(0.5), p99: percentile(0.99) })
}

/// The gateway in cloud mode in front of `backend`; returns its base URL.
async fn serve_gateway(backend: &str) -> anyhow::Result<String> {
    let config = GatewayConfig {
        pool: "bench".into(),
        port: 0,
        cloud: CloudTarget { url: backend.to_owned(), model: "bench".into() },
        edge: Vec::new(),
        routing: RoutingSpec { mode: RoutingMode::Cloud, ..RoutingSpec::default() },
    };
    let settings = Settings {
        config,
        listen: "127.0.0.1:0".parse()?,
        limits: Limits { max_body_bytes: 1 << 20, default_max_tokens: 512, max_tokens_cap: 4096 },
        keys: ApiKeys::default(),
        discovery: Discovery::Static(Vec::new()),
        edge_tls: None,
        load_interval: Duration::from_secs(1),
    };
    let gateway = server::bind(settings, Registry::new()).await?;
    let url = format!("http://{}", gateway.local_addr()?);
    tokio::spawn(gateway.serve(std::future::pending()));
    Ok(url)
}

/// A backend that answers every chat completion at once with the same `ANSWER_TOKENS` words.
async fn serve_backend() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(answer))
        .route("/v1/models", axum::routing::get(|| async { Json(ModelList::default()) }));
    let listener = listener.tap_io(|tcp| {
        let _unsupported = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

async fn answer(Json(request): Json<ChatCompletionRequest>) -> Response {
    let words: Vec<String> = (0..ANSWER_TOKENS).map(|i| format!(" word{i}")).collect();
    let usage = Usage {
        prompt_tokens: 8,
        completion_tokens: ANSWER_TOKENS as u32,
        total_tokens: 8 + ANSWER_TOKENS as u32,
    };
    if !request.stream {
        let message = ChatMessage::new("assistant", words.concat());
        let choice = Choice { index: 0, message, finish_reason: Some("stop".into()), logprobs: None };
        return Json(ChatCompletion {
            choices: vec![choice],
            usage: Some(usage),
            ..ChatCompletion::default()
        })
        .into_response();
    }
    let chunk = |content: Option<String>, finish: Option<&str>, usage: Option<Usage>| {
        let delta = Delta { role: None, content };
        let choice =
            ChunkChoice { index: 0, delta, finish_reason: finish.map(str::to_owned), logprobs: None };
        let chunk = ChatCompletionChunk { choices: vec![choice], usage, ..ChatCompletionChunk::default() };
        Ok::<_, Infallible>(Event::default().json_data(chunk).unwrap_or_default())
    };
    let mut events: Vec<_> = words.into_iter().map(|word| chunk(Some(word), None, None)).collect();
    events.push(chunk(None, Some("stop"), Some(usage)));
    events.push(Ok(Event::default().data("[DONE]")));
    Sse::new(futures::stream::iter(events)).into_response()
}
