//! Benchmark B4, the llama backend's batching on this machine's CPU: `cargo run --release -p
//! pice-edge-agent --features llama --example b4 -- MODEL.gguf REPORT.md [RUNS]` (`make
//! bench-b4` fetches SmolLM2-135M and writes docs/benchmarks/B4.md).
//!
//! (a) One answer's 8 points (expansion prompts from `pice_wire::prompt`, 64 tokens each) as one
//! shared-prefix batch, against the same engine with prefix sharing off, and against the points
//! generated one after another. (b) 1, 4 and 16 answers of 8 points at once, prefix sharing on
//! and off. Every run loads a fresh backend, so no run finds the previous one's prefix in the
//! cache; (a) takes the median of RUNS runs (3 by default), (b) one run of each (it is minutes
//! long on a small CPU).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::future::try_join_all;
use pice_edge_agent::llama::{LlamaBackend, LlamaSettings};
use pice_wire::generation::{ExpansionRequest, GenerationEvent, ModelBackend, Usage};

const POINTS: usize = 8;
const MAX_TOKENS: u32 = 64;
const SLOTS: u32 = 16;
const CONTEXT_TOKENS: u32 = SLOTS * 1024;
const CONCURRENT_ANSWERS: [usize; 3] = [1, 4, 16];
/// Runs of each (b) case.
const CONCURRENT_RUNS: usize = 1;

const CITIES: [&str; 16] = [
    "Lyon", "Porto", "Leipzig", "Bologna", "Gdansk", "Tampere", "Ghent", "Malmo", "Brno", "Bilbao",
    "Utrecht", "Graz", "Aarhus", "Cork", "Turin", "Nantes",
];

/// Four answer outlines; the city makes each answer's prompts its own.
const TOPICS: [(&str, [&str; POINTS]); 4] = [
    (
        "How can {city} cut its traffic emissions?",
        [
            "Expand bus and tram networks with frequent service",
            "Build protected bike lanes across the centre",
            "Charge a congestion fee for central streets",
            "Electrify the municipal vehicle fleet",
            "Make parking scarcer and pricier downtown",
            "Allow denser housing near stations",
            "Synchronise traffic lights to smooth flow",
            "Support remote work and flexible hours",
        ],
    ),
    (
        "How should a family in {city} prepare for a summer heat wave?",
        [
            "Check the forecast and local heat alerts daily",
            "Keep windows shaded by day and open at night",
            "Drink water regularly before feeling thirsty",
            "Plan outdoor activity for early morning",
            "Look after elderly neighbours and small children",
            "Know the signs of heat exhaustion and stroke",
            "Find cool public places such as libraries",
            "Never leave people or pets in parked cars",
        ],
    ),
    (
        "What makes public transport in {city} attractive to commuters?",
        [
            "Frequent service so nobody needs a timetable",
            "Reliable journey times on dedicated lanes",
            "Simple fares with one ticket for all modes",
            "Safe, clean and accessible stations",
            "Real-time information on phones and platforms",
            "Good connections between lines and to bikes",
            "Service late at night and on weekends",
            "Fares cheaper than driving and parking",
        ],
    ),
    (
        "How could {city} attract more technology start-ups?",
        [
            "Offer affordable office space in the centre",
            "Link universities with founders and investors",
            "Speed up permits and company registration",
            "Back early-stage funds with public money",
            "Attract talent with quick visas for specialists",
            "Invest in fast broadband and data centres",
            "Host meetups, accelerators and demo days",
            "Keep housing affordable for young workers",
        ],
    ),
];

/// Answer `answer`'s point `point`.
fn request(answer: usize, point: usize) -> ExpansionRequest {
    let (question, sketch) = TOPICS[answer % TOPICS.len()];
    ExpansionRequest {
        question: question.replace("{city}", CITIES[answer % CITIES.len()]),
        sketch: sketch.map(String::from).to_vec(),
        point_index: point,
        max_tokens: MAX_TOKENS,
        seed: Some(u64::try_from(answer * POINTS + point).unwrap_or(0) + 1),
        prefix_id: format!("answer-{answer}"),
        ..ExpansionRequest::default()
    }
}

/// How the points are generated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// All at once, prefix sharing on.
    Shared,
    /// All at once, prefix sharing off.
    Unshared,
    /// One point after another, prefix sharing off.
    Sequential,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Self::Shared => "one batch, shared prefix",
            Self::Unshared => "one batch, prefix sharing off",
            Self::Sequential => "one point after another, sharing off",
        }
    }
}

/// One run's outcome.
struct Run {
    seconds: f64,
    completion_tokens: u64,
    prompt_tokens: u64,
    reused_tokens: u64,
}

impl Run {
    fn tokens_per_second(&self) -> f64 {
        self.completion_tokens as f64 / self.seconds
    }
}

async fn generate(backend: &LlamaBackend, request: ExpansionRequest) -> anyhow::Result<Usage> {
    let mut stream = backend.generate(request).await?;
    while let Some(event) = stream.next().await {
        if let GenerationEvent::Finished(usage) = event? {
            return Ok(usage);
        }
    }
    bail!("a generation ended without finishing")
}

fn load(model_path: &Path, share_prefix: bool) -> anyhow::Result<LlamaBackend> {
    let settings = LlamaSettings {
        model_path: model_path.to_owned(),
        model_name: None,
        threads: None,
        slots: SLOTS,
        context_tokens: CONTEXT_TOKENS,
        share_prefix,
    };
    Ok(LlamaBackend::load(&settings)?)
}

/// Generates every point of `answers` answers on a fresh backend and times it.
async fn run(model_path: &Path, mode: Mode, answers: usize) -> anyhow::Result<Run> {
    let backend = load(model_path, mode == Mode::Shared)?;
    // Warm up the threads and caches with a generation no answer shares a prefix with.
    let warm_up = ExpansionRequest {
        question: "Say hello.".into(),
        sketch: vec!["Greet the reader".into()],
        max_tokens: 4,
        ..ExpansionRequest::default()
    };
    generate(&backend, warm_up).await?;
    let before = backend.stats();
    let requests = (0..answers).flat_map(|answer| (0..POINTS).map(move |point| request(answer, point)));
    let started = Instant::now();
    let usages = if mode == Mode::Sequential {
        let mut usages = Vec::new();
        for request in requests {
            usages.push(generate(&backend, request).await?);
        }
        usages
    } else {
        try_join_all(requests.map(|request| generate(&backend, request))).await?
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run {
        seconds,
        completion_tokens: usages.iter().map(|u| u64::from(u.completion_tokens)).sum(),
        prompt_tokens: usages.iter().map(|u| u64::from(u.prompt_tokens)).sum(),
        reused_tokens: backend.stats().prefix_reused_tokens_total - before.prefix_reused_tokens_total,
    })
}

/// The median run by time, and its figures.
struct Measured {
    median: Run,
    seconds: Vec<f64>,
}

async fn measure(model_path: &Path, mode: Mode, answers: usize, runs: usize) -> anyhow::Result<Measured> {
    let mut all = Vec::new();
    for _ in 0..runs {
        let run = run(model_path, mode, answers).await?;
        eprintln!(
            "{answers} answer(s), {}: {:.2} s, {} tokens, {:.1} tokens/s, {} prompt tokens reused",
            mode.label(),
            run.seconds,
            run.completion_tokens,
            run.tokens_per_second(),
            run.reused_tokens
        );
        all.push(run);
    }
    all.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let seconds = all.iter().map(|r| r.seconds).collect();
    let median = all.swap_remove(all.len() / 2);
    Ok(Measured { median, seconds })
}

fn row(label: &str, measured: &Measured) -> String {
    let run = &measured.median;
    let runs: Vec<String> = measured.seconds.iter().map(|s| format!("{s:.2}")).collect();
    format!(
        "| {label} | {:.2} | {} | {:.1} | {} | {} | {} |\n",
        run.seconds,
        run.completion_tokens,
        run.tokens_per_second(),
        run.prompt_tokens,
        run.reused_tokens,
        runs.join(", ")
    )
}

const TABLE_HEAD: &str = "| | time until all points are done, s (median) | tokens generated | tokens/s | prompt tokens | prompt tokens reused | runs, s |\n|---|---:|---:|---:|---:|---:|---|\n";

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(|| "unknown".to_owned(), |kib| format!("{:.1}", kib / 1024.0 / 1024.0));
    format!("{cpu}, `nproc` = {}, {memory_gib} GiB memory", shell("nproc", &[]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: b4 MODEL.gguf REPORT.md [RUNS]";
    let model_path = PathBuf::from(args.next().context(usage)?);
    let report_path = PathBuf::from(args.next().context(usage)?);
    let runs: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut single = Vec::new();
    for mode in [Mode::Shared, Mode::Unshared, Mode::Sequential] {
        single.push((mode, measure(&model_path, mode, 1, runs).await?));
    }
    let mut concurrent = Vec::new();
    for answers in CONCURRENT_ANSWERS {
        for mode in [Mode::Shared, Mode::Unshared] {
            concurrent.push((answers, mode, measure(&model_path, mode, answers, CONCURRENT_RUNS).await?));
        }
    }

    let time = |mode| single.iter().find(|(m, _)| *m == mode).map_or(f64::NAN, |(_, m)| m.median.seconds);
    let versus_unshared = time(Mode::Unshared) / time(Mode::Shared);
    let versus_sequential = time(Mode::Sequential) / time(Mode::Shared);
    let verdict = if versus_unshared >= 2.0 { "met" } else { "missed" };

    let mut report = String::new();
    writeln!(report, "# B4: the llama backend's shared-prefix batching on CPU\n")?;
    writeln!(
        report,
        "Real llama.cpp numbers on this machine's CPU (no GPU), through `pice_edge_agent::llama::LlamaBackend` \
         as the agent runs it: one engine thread, one context, all sequences decoded as one batch per step.\n"
    )?;
    writeln!(
        report,
        "- Command: `make bench-b4` (`cargo run --release -p pice-edge-agent --features llama --example b4 -- MODEL REPORT {runs}`)"
    )?;
    writeln!(report, "- Git revision: {}", shell("git", &["rev-parse", "--short", "HEAD"]))?;
    writeln!(report, "- Date: {}", shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]))?;
    writeln!(report, "- Machine: {}", machine())?;
    writeln!(
        report,
        "- Model: `{}` (llama.cpp through llama-cpp-2 0.1.160, CPU, default flash-attention policy)",
        model_path
            .file_name()
            .map_or_else(|| model_path.display().to_string(), |n| n.to_string_lossy().into_owned())
    )?;
    writeln!(
        report,
        "- Engine: {threads} threads (all cores), {SLOTS} slots, {CONTEXT_TOKENS} KV cells, prefill up to 256 prompt tokens per step"
    )?;
    writeln!(
        report,
        "- Work: each answer has {POINTS} points of an {POINTS}-point outline, prompts from `pice_wire::prompt::expansion_messages`, \
         {MAX_TOKENS} tokens at most per point (a point may stop earlier), seeded sampling at the default temperature; \
         every run on a freshly loaded backend after a 4-token warm-up; (a) medians of {runs} runs, (b) {CONCURRENT_RUNS} run each\n"
    )?;
    writeln!(report, "## (a) One answer's {POINTS} points\n")?;
    report.push_str(TABLE_HEAD);
    for (mode, measured) in &single {
        report.push_str(&row(mode.label(), measured));
    }
    writeln!(
        report,
        "\nThe shared-prefix batch finishes the answer {versus_unshared:.2}x as fast as the same engine with prefix sharing off \
         and {versus_sequential:.2}x as fast as the points one after another. Target: at least 2x against separate sequences \
         (prefix sharing off): **{verdict}** ({versus_unshared:.2}x).\n"
    )?;
    writeln!(report, "## (b) Answers at once ({CONCURRENT_RUNS} run each)\n")?;
    report.push_str(TABLE_HEAD);
    for (answers, mode, measured) in &concurrent {
        let label = format!("{answers} answer(s), {} points, {}", answers * POINTS, mode.label());
        report.push_str(&row(&label, measured));
    }
    writeln!(
        report,
        "\nWith more than {SLOTS} points in flight the rest wait in the engine for a sequence; a point that \
         starts later takes its prefix from its answer's earlier points, or from a finished one still in the cache."
    )?;
    std::fs::write(&report_path, &report)
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    print!("{report}");
    Ok(())
}
