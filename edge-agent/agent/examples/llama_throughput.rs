//! Measures the llama backend's generation speed: `cargo run --release -p pice-edge-agent
//! --features llama --example llama_throughput -- MODEL.gguf [RUNS] [MAX_TOKENS] [THREADS]`.
//!
//! Each run expands the same sketch point with a fresh seed (on all cores unless THREADS says
//! otherwise); it prints the prompt
//! and completion tokens, the time to the first piece, the decode rate (tokens after the first
//! over the time after it) and the end-to-end rate, then the medians.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use pice_edge_agent::llama::{LlamaBackend, LlamaSettings};
use pice_wire::generation::{ExpansionRequest, GenerationEvent, ModelBackend, Usage};

struct Run {
    usage: Usage,
    first_piece_s: f64,
    total_s: f64,
}

impl Run {
    fn decode_rate(&self) -> f64 {
        f64::from(self.usage.completion_tokens.saturating_sub(1)) / (self.total_s - self.first_piece_s)
    }

    fn end_to_end_rate(&self) -> f64 {
        f64::from(self.usage.completion_tokens) / self.total_s
    }
}

async fn run(backend: &LlamaBackend, max_tokens: u32, seed: u64) -> anyhow::Result<Run> {
    let request = ExpansionRequest {
        question: "How does a heat pump heat a house?".into(),
        sketch: vec![
            "A refrigerant absorbs outdoor heat".into(),
            "A compressor raises its temperature".into(),
            "Indoor coils release the heat".into(),
        ],
        point_index: 1,
        max_tokens,
        want_logprobs: false,
        seed: Some(seed),
        ..ExpansionRequest::default()
    };
    let started = Instant::now();
    let mut stream = backend.generate(request).await?;
    let mut first_piece_s = None;
    while let Some(event) = stream.next().await {
        match event? {
            GenerationEvent::Text(_) => {
                first_piece_s.get_or_insert(started.elapsed().as_secs_f64());
            }
            GenerationEvent::Finished(usage) => {
                let first_piece_s = first_piece_s.context("no text was generated")?;
                return Ok(Run { usage, first_piece_s, total_s: started.elapsed().as_secs_f64() });
            }
        }
    }
    bail!("the generation ended without finishing")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_path = PathBuf::from(
        args.next().context("usage: llama_throughput MODEL.gguf [RUNS] [MAX_TOKENS] [THREADS]")?,
    );
    let runs: u64 = args.next().map_or(Ok(3), |a| a.parse())?;
    let max_tokens: u32 = args.next().map_or(Ok(128), |a| a.parse())?;
    let threads: Option<u32> = args.next().map(|a| a.parse()).transpose()?;
    let settings = LlamaSettings {
        model_path,
        model_name: None,
        threads,
        slots: 1,
        context_tokens: 2048,
        share_prefix: true,
    };
    let backend = LlamaBackend::load(&settings)?;
    let (mut decode, mut end_to_end) = (Vec::new(), Vec::new());
    for seed in 1..=runs.max(1) {
        let run = run(&backend, max_tokens, seed).await?;
        println!(
            "run {seed}: prompt {} tokens, completion {} tokens ({}), first piece {:.3} s, \
             decode {:.1} tokens/s, end to end {:.1} tokens/s",
            run.usage.prompt_tokens,
            run.usage.completion_tokens,
            run.usage.finish_reason.as_str(),
            run.first_piece_s,
            run.decode_rate(),
            run.end_to_end_rate(),
        );
        decode.push(run.decode_rate());
        end_to_end.push(run.end_to_end_rate());
    }
    println!(
        "median of {}: decode {:.1} tokens/s, end to end {:.1} tokens/s",
        decode.len(),
        median(decode),
        median(end_to_end)
    );
    Ok(())
}
