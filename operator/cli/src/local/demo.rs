//! `pice local --demo`: one question through the gateway in progressive mode and the same in
//! cloud-only mode (header `x-pice-mode`), streamed; prints the progressive answer and a
//! comparison of time to first token, total time and cloud output tokens.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::LocalError;

/// The demo question: a list-shaped answer, which progressive mode serves.
pub const QUESTION: &str = "What are six practical ways to make a small retail store more energy efficient?";
/// Token budget of each demo answer.
const MAX_TOKENS: u32 = 400;

/// What one streamed answer took.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The mode asked for.
    pub mode: &'static str,
    pub text: String,
    pub first_token: Duration,
    pub total: Duration,
    /// Tokens the cloud generated (the `pice` field of the last chunk).
    pub cloud_tokens: u64,
    /// Tokens the edge generated.
    pub edge_tokens: u64,
    /// Fallback steps the gateway took (edge attempts that failed or ran out of time).
    pub fallbacks: u64,
    /// The mode that ran.
    pub ran: String,
}

/// Asks [`QUESTION`] of the gateway at `url` in both modes and prints the result.
pub async fn run(url: &str, pool: &str) -> Result<(), LocalError> {
    println!("\nDemo: asking {QUESTION:?} in progressive mode, then in cloud-only mode ...\n");
    let progressive = ask(url, pool, "progressive").await?;
    let cloud = ask(url, pool, "cloud").await?;
    println!("Progressive answer (mode that ran: {}):\n\n{}\n", progressive.ran, progressive.text.trim());
    println!("{}", comparison(&cloud, &progressive));
    Ok(())
}

/// Streams one answer in `mode` and measures it.
pub async fn ask(url: &str, pool: &str, mode: &'static str) -> Result<Measured, LocalError> {
    let failed = |reason: String| LocalError::Demo { mode, reason };
    let body = serde_json::json!({
        "model": pool,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": true,
        "max_tokens": MAX_TOKENS,
        "seed": 1,
    });
    pice_wire::crypto::install_default_provider();
    let start = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-pice-mode", mode)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(failed(format!("{status}: {}", response.text().await.unwrap_or_default())));
    }
    let mut measured = Measured::new(mode);
    let mut events = SseBuffer::default();
    let mut bytes = response.bytes_stream();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| failed(e.to_string()))?;
        for event in events.push(&String::from_utf8_lossy(&chunk)) {
            measured.take(&event, start.elapsed());
        }
    }
    measured.total = start.elapsed();
    if measured.ran.is_empty() {
        return Err(failed("the stream ended without its final chunk".into()));
    }
    Ok(measured)
}

impl Measured {
    /// Nothing measured yet.
    fn new(mode: &'static str) -> Self {
        Self {
            mode,
            text: String::new(),
            first_token: Duration::ZERO,
            total: Duration::ZERO,
            cloud_tokens: 0,
            edge_tokens: 0,
            fallbacks: 0,
            ran: String::new(),
        }
    }

    /// Takes in one streamed chunk that arrived `at` after the request.
    fn take(&mut self, event: &serde_json::Value, at: Duration) {
        if let Some(text) = event["choices"][0]["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
            if self.text.is_empty() {
                self.first_token = at;
            }
            self.text.push_str(text);
        }
        if let Some(pice) = event.get("pice") {
            self.cloud_tokens = pice["cloud_tokens"].as_u64().unwrap_or_default();
            self.edge_tokens = pice["edge_tokens"].as_u64().unwrap_or_default();
            self.fallbacks = pice["fallbacks"].as_u64().unwrap_or_default();
            self.ran = pice["mode"].as_str().unwrap_or_default().to_owned();
        }
    }
}

/// Server-sent events split out of arriving text; `data:` payloads parsed as JSON.
#[derive(Default)]
struct SseBuffer {
    pending: String,
}

impl SseBuffer {
    fn push(&mut self, text: &str) -> Vec<serde_json::Value> {
        self.pending.push_str(text);
        let mut events = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let event: String = self.pending.drain(..end + 2).collect();
            let data = event.lines().find_map(|line| line.strip_prefix("data: "));
            events.extend(data.and_then(|d| serde_json::from_str(d).ok()));
        }
        events
    }
}

/// The comparison table of the two answers.
pub fn comparison(cloud: &Measured, progressive: &Measured) -> String {
    let row = |name: &str, m: &Measured| {
        let (first, total) = (m.first_token.as_secs_f64(), m.total.as_secs_f64());
        format!("  {name:<12} {first:>9.2} s {total:>9.2} s {:>12} {:>11}\n", m.cloud_tokens, m.edge_tokens)
    };
    let header = format!(
        "  {:<12} {:>11} {:>11} {:>12} {:>11}\n",
        "mode", "1st token", "total", "cloud tokens", "edge tokens"
    );
    let ratio = cloud.total.as_secs_f64() / progressive.total.as_secs_f64().max(1e-9);
    let fallbacks = match progressive.fallbacks {
        0 => String::new(),
        n => format!(
            "\n  The gateway fell back {n} time(s) in progressive mode (an edge attempt failed or ran out of time; the cloud expanded that point)."
        ),
    };
    format!(
        "Comparison (one request each, on this machine):\n\n{header}{}{}\n  \
         Progressive took {:.2} s against {:.2} s cloud-only ({ratio:.1}x as fast), with {} cloud output tokens instead of {}.{fallbacks}\n",
        row("cloud only", cloud),
        row("progressive", progressive),
        progressive.total.as_secs_f64(),
        cloud.total.as_secs_f64(),
        progressive.cloud_tokens,
        cloud.cloud_tokens,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut buffer = SseBuffer::default();
        assert!(buffer.push("data: {\"choices\": [{\"delta\": {\"con").is_empty());
        let events = buffer.push("tent\": \"Hi\"}}]}\n\ndata: [DONE]\n\n");
        assert_eq!(events.len(), 1);
        let mut measured = Measured::new("cloud");
        measured.take(&events[0], Duration::from_millis(30));
        let end = serde_json::json!({"pice": {"mode": "cloud", "cloud_tokens": 12, "edge_tokens": 3, "fallbacks": 1}});
        measured.take(&end, Duration::from_millis(90));
        assert_eq!((measured.edge_tokens, measured.fallbacks), (3, 1));
        assert_eq!(
            (measured.text.as_str(), measured.first_token, measured.cloud_tokens),
            ("Hi", Duration::from_millis(30), 12)
        );
    }

    #[test]
    fn the_comparison_shows_both_modes_and_the_speedup() {
        let at = |ms| Duration::from_millis(ms);
        let cloud = Measured {
            text: "a".into(),
            first_token: at(200),
            total: at(8000),
            cloud_tokens: 400,
            ..Measured::new("cloud")
        };
        let progressive =
            Measured { total: at(2000), cloud_tokens: 80, edge_tokens: 300, fallbacks: 2, ..cloud.clone() };
        let table = comparison(&cloud, &progressive);
        assert!(table.contains("cloud only        0.20 s      8.00 s          400           0"), "{table}");
        assert!(
            table.contains(
                "2.00 s against 8.00 s cloud-only (4.0x as fast), with 80 cloud output tokens instead of 400"
            ),
            "{table}"
        );
        assert!(table.contains("fell back 2 time(s)"), "{table}");
    }
}
