//! B2's load generator, the same for every system: a keep-alive HTTP/1.1 client sending one
//! chat completion again and again, either closed loop (N clients, each sending its next request
//! when the last one ended: requests/s at saturation) or open loop (a fixed rate, whatever the
//! answers do: latency at a load every system carries).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use futures::StreamExt;

use super::stats::Run;
use super::system::API_KEY;

/// How long an open-loop run waits for its last answers.
const DRAIN: Duration = Duration::from_secs(10);

/// What to send, and where.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub body: Bytes,
    /// Text every complete answer contains (the last word, or `[DONE]` when streamed).
    pub expect: &'static str,
}

impl Target {
    /// A chat completion of `tokens` to `base` (`http://host:port`).
    pub fn new(base: &str, stream: bool, tokens: usize) -> Self {
        let body = serde_json::json!({
            "model": super::backend::MODEL,
            "messages": [{"role": "user", "content": "Why is the sky blue?"}],
            "stream": stream,
            "max_tokens": tokens,
        });
        Self {
            url: format!("{base}/v1/chat/completions"),
            body: Bytes::from(body.to_string()),
            expect: if stream { "[DONE]" } else { "\"finish_reason\":\"stop\"" },
        }
    }
}

/// The client every run uses: keep-alive, Nagle off, enough idle connections for every client.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(4096).tcp_nodelay(true).http1_only().build()?)
}

/// One request; its latency in seconds, or why it failed.
pub async fn one(client: &reqwest::Client, target: &Target) -> anyhow::Result<f64> {
    let sent = Instant::now();
    let response = client
        .post(&target.url)
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(target.body.clone())
        .send()
        .await?;
    let status = response.status();
    let mut body = Vec::with_capacity(4096);
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        body.extend_from_slice(&chunk?);
    }
    let latency = sent.elapsed().as_secs_f64();
    anyhow::ensure!(status.is_success(), "HTTP {status}: {}", String::from_utf8_lossy(&body));
    let complete = body.windows(target.expect.len()).any(|w| w == target.expect.as_bytes());
    anyhow::ensure!(complete, "incomplete answer: {}", String::from_utf8_lossy(&body));
    Ok(latency)
}

/// `clients` closed loops for `duration`.
pub async fn closed(client: &reqwest::Client, target: &Target, clients: usize, duration: Duration) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let loops = (0..clients).map(|_| async {
        let mut latencies = Vec::new();
        let mut errors = Vec::new();
        while Instant::now() < deadline {
            match one(client, target).await {
                Ok(latency) => latencies.push(latency),
                Err(error) => {
                    errors.push(format!("{error:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        (latencies, errors)
    });
    let results = futures::future::join_all(loops).await;
    Run::collect(results, started.elapsed().as_secs_f64())
}

/// Requests at a fixed `rate` per second for `duration`, each on its own task.
pub async fn open(client: &reqwest::Client, target: &Target, rate: f64, duration: Duration) -> Run {
    let target = Arc::new(target.clone());
    let started = Instant::now();
    let count = (rate * duration.as_secs_f64()).round() as usize;
    let mut tasks = Vec::with_capacity(count);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(f64::EPSILON)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..count {
        ticks.tick().await;
        let (client, target) = (client.clone(), Arc::clone(&target));
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(DRAIN, one(&client, &target)).await.context("no answer in time")?
        }));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(error)) => errors.push(format!("{error:#}")),
            Err(error) => errors.push(error.to_string()),
        }
    }
    Run::collect(vec![(latencies, errors)], elapsed)
}
