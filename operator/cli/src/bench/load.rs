//! Open-loop Poisson load on the gateway: one streamed chat completion per arrival, sent on
//! schedule whatever the earlier ones do, timed to its first content token and to its end.

use std::time::Duration;

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

/// The benchmark gateway's pool name, which requests name as their model.
pub const POOL: &str = "bench";

/// What one request saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// When it was sent, seconds from the start of the level.
    pub sent_at: f64,
    /// Seconds to the end of the stream; `None` if it failed or was still running at the cut-off.
    pub latency: Option<f64>,
    /// Seconds to the first content token.
    pub ttft: Option<f64>,
    /// The mode that ran, from the final chunk's `pice` field.
    pub mode: Option<String>,
    /// Why that mode ran (the `pice` field's `reason`).
    pub reason: Option<String>,
    /// Tokens the client received (usage).
    pub completion_tokens: u64,
    /// Tokens the edge generated for it (the `pice` field's `edge_tokens`).
    pub edge_tokens: u64,
    /// Whether the gateway refused it with 429 (admission: over the pool's capacity).
    pub rejected: bool,
}

impl Outcome {
    /// When it finished, seconds from the start of the level.
    pub fn finished_at(&self) -> Option<f64> {
        self.latency.map(|latency| self.sent_at + latency)
    }
}

/// One load level.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Gateway base URL.
    pub url: String,
    /// `x-pice-mode` header value.
    pub mode: &'static str,
    /// Arrivals per second.
    pub rate: f64,
    /// How long arrivals go on.
    pub duration: Duration,
    /// How long after the last arrival requests may still finish.
    pub drain: Duration,
    pub max_tokens: u32,
    pub seed: u64,
}

/// Arrival times of a Poisson process of `rate` per second within `duration`.
pub fn arrivals(rate: f64, duration: Duration, seed: u64) -> Vec<Duration> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut at = 0.0;
    let mut times = Vec::new();
    loop {
        let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
        at += -uniform.ln() / rate;
        if at >= duration.as_secs_f64() {
            return times;
        }
        times.push(Duration::from_secs_f64(at));
    }
}

/// Sends the load and returns every request's outcome.
pub async fn run(client: &reqwest::Client, spec: &LoadSpec, questions: &[String]) -> Vec<Outcome> {
    let start = Instant::now();
    let cut_off = start + spec.duration + spec.drain;
    let mut order = StdRng::seed_from_u64(spec.seed.wrapping_add(1));
    let mut tasks = Vec::new();
    for at in arrivals(spec.rate, spec.duration, spec.seed) {
        tokio::time::sleep_until(start + at).await;
        let question = questions[order.random_range(0..questions.len())].clone();
        let (client, spec) = (client.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = tokio::time::timeout_at(cut_off, one(&client, &spec, &question, sent)).await;
            Outcome { sent_at: (sent - start).as_secs_f64(), ..outcome.unwrap_or_default() }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        if let Ok(outcome) = task.await {
            outcomes.push(outcome);
        }
    }
    outcomes
}

async fn one(client: &reqwest::Client, spec: &LoadSpec, question: &str, sent: Instant) -> Outcome {
    let body = serde_json::json!({
        "model": POOL,
        "messages": [{"role": "user", "content": question}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": spec.max_tokens,
    });
    let request =
        client.post(format!("{}/v1/chat/completions", spec.url)).header("x-pice-mode", spec.mode).json(&body);
    let mut outcome = Outcome::default();
    let Ok(response) = request.send().await else { return outcome };
    if !response.status().is_success() {
        outcome.rejected = response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS;
        return outcome;
    }
    let mut stream = response.bytes_stream();
    let mut pending = String::new();
    while let Some(Ok(bytes)) = stream.next().await {
        pending.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if read_event(&event, &mut outcome, sent) {
                outcome.latency = Some(sent.elapsed().as_secs_f64());
                return outcome;
            }
        }
    }
    outcome
}

/// Folds one server-sent event into `outcome`; true at `[DONE]`.
fn read_event(event: &str, outcome: &mut Outcome, sent: Instant) -> bool {
    let Some(data) = event.lines().find_map(|line| line.strip_prefix("data: ")) else { return false };
    if data.trim() == "[DONE]" {
        return true;
    }
    let Ok(chunk) = serde_json::from_str::<Value>(data) else { return false };
    let has_text = chunk["choices"][0]["delta"]["content"].as_str().is_some_and(|text| !text.is_empty());
    if has_text && outcome.ttft.is_none() {
        outcome.ttft = Some(sent.elapsed().as_secs_f64());
    }
    if let Some(mode) = chunk["pice"]["mode"].as_str() {
        outcome.mode = Some(mode.to_owned());
    }
    if let Some(reason) = chunk["pice"]["reason"].as_str() {
        outcome.reason = Some(reason.to_owned());
    }
    if let Some(tokens) = chunk["usage"]["completion_tokens"].as_u64() {
        outcome.completion_tokens = tokens;
    }
    if let Some(tokens) = chunk["pice"]["edge_tokens"].as_u64() {
        outcome.edge_tokens = tokens;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn poisson_arrivals_have_the_asked_rate_and_stay_in_the_window() {
        let times = arrivals(50.0, Duration::from_secs(100), 3);
        assert!((4700..5300).contains(&times.len()), "{}", times.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.last().unwrap() < &Duration::from_secs(100));
    }

    #[test]
    fn events_give_the_first_token_the_mode_and_the_usage() {
        let mut outcome = Outcome::default();
        let sent = Instant::now();
        assert!(!read_event("data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n", &mut outcome, sent));
        assert_eq!(outcome.ttft, None);
        assert!(!read_event(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            &mut outcome,
            sent
        ));
        let last = "data: {\"choices\":[],\"pice\":{\"mode\":\"progressive\",\"reason\":\"requested\",\"edge_tokens\":30},\"usage\":{\"completion_tokens\":9}}";
        assert!(!read_event(last, &mut outcome, sent));
        assert!(read_event("data: [DONE]\n\n", &mut outcome, sent));
        assert!(outcome.ttft.is_some());
        assert_eq!((outcome.mode.as_deref(), outcome.completion_tokens), (Some("progressive"), 9));
        assert_eq!((outcome.reason.as_deref(), outcome.edge_tokens), (Some("requested"), 30));
    }
}
