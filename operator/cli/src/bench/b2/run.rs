//! B2's wiring: start the backend, then each system in turn in front of it; measure JSON and
//! SSE answers (warm-up, closed-loop saturation runs, fixed-rate runs, memory); write the report.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::cli::B2Args;
use super::load::{self, Target};
use super::start::{self, Started};
use super::stats::{Measured, Row, Run};
use super::system::{self, Setup, System};
use super::{backend, report, rss};
use crate::bench::provenance::Provenance;
use crate::process::{Child, free_addr};

/// A system whose saturation rate is under this multiple of the fixed rate is flagged: its
/// latency at that rate is mostly queueing.
const OVER_CAPACITY: f64 = 1.25;

/// Runs B2 as `args` say (or only serves the backend, with `--serve-backend`).
pub async fn run(args: B2Args) -> anyhow::Result<()> {
    if let Some(addr) = args.serve_backend {
        return backend::serve(addr, args.answer_tokens).await;
    }
    let provenance = Provenance::at_start();
    anyhow::ensure!(
        args.rate > 0.0 && args.repeats > 0 && args.clients > 0,
        "--rate, --repeats and --clients must be positive"
    );
    let dir = std::env::temp_dir().join(format!("pice-b2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("b2: logs and configs in {}", dir.display());
    let mut backend = start_backend(&args, &dir).await?;
    let backend_addr = backend.listening_addr().await?.parse().context("the backend's address")?;
    let setup = Setup {
        bin_dir: args.bin_dir.clone(),
        baseline_bin_dir: args.baseline_bin_dir.clone(),
        routers_dir: args.routers_dir(),
        backend: backend_addr,
        workers: args.workers,
    };
    let mut measured = Vec::new();
    for system in systems(&args) {
        let result = measure_system(system, &setup, &args, &dir, backend.id()).await;
        eprintln!("b2: {}: {}", system.label(), result.rows.iter().map(brief).collect::<Vec<_>>().join("; "));
        measured.push(result);
    }
    backend.stop().await;
    report::write(&args, &measured, &provenance)
}

/// The direct backend first, then the systems asked for, the baseline build right after the
/// current gateway.
fn systems(args: &B2Args) -> Vec<System> {
    let mut systems = vec![System::Direct];
    for &system in &args.systems {
        systems.push(system);
        if system == System::Pice && args.baseline_bin_dir.is_some() {
            systems.push(System::PiceBaseline);
        }
    }
    systems
}

async fn start_backend(args: &B2Args, dir: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the pice executable")?;
    let serve = [
        "bench".into(),
        "b2".into(),
        "--serve-backend=127.0.0.1:0".into(),
        format!("--answer-tokens={}", args.answer_tokens),
    ];
    Ok(Child::spawn("backend", &exe, &serve, dir)?)
}

fn brief(row: &Row) -> String {
    format!(
        "{} {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms{}",
        if row.stream { "SSE" } else { "JSON" },
        row.saturation,
        row.p50,
        row.p99,
        row.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    )
}

/// Starts `system` (the direct backend needs no start), measures it, stops it.
async fn measure_system(
    system: System,
    setup: &Setup,
    args: &B2Args,
    dir: &Path,
    backend_pid: Option<u32>,
) -> Measured {
    let label = system.label();
    let (port, metrics_port) = (free_port(), free_port());
    let Some(launch) = system::launch(system, setup, port, metrics_port, dir) else {
        let url = format!("http://{}", setup.backend);
        let rows = measure_both(label, &url, backend_pid, args).await;
        return Measured { system, settings: "the backend itself, no proxy".into(), rows };
    };
    eprintln!("b2: starting {label}");
    let started: anyhow::Result<Started> = start::start(system.venv_name(), &launch, port, dir).await;
    let rows = match started {
        Ok(Started { child, url }) => {
            let rows = measure_both(label, &url, child.id(), args).await;
            child.stop().await;
            rows
        }
        Err(error) => {
            let reason = format!("did not start: {error:#}");
            vec![Row::failed(label, false, &reason), Row::failed(label, true, &reason)]
        }
    };
    Measured { system, settings: launch.settings, rows }
}

async fn measure_both(label: &str, url: &str, pid: Option<u32>, args: &B2Args) -> Vec<Row> {
    let mut rows = Vec::new();
    for stream in [false, true] {
        rows.push(measure(label, url, stream, pid, args).await);
    }
    rows
}

/// Warm-up, then `repeats` saturation runs and `repeats` fixed-rate runs, interleaved.
async fn measure(label: &str, url: &str, stream: bool, pid: Option<u32>, args: &B2Args) -> Row {
    let client = match load::client() {
        Ok(client) => client,
        Err(error) => return Row::failed(label, stream, &format!("no HTTP client: {error:#}")),
    };
    let target = Target::new(url, stream, args.answer_tokens);
    let (duration, warmup) =
        (Duration::from_secs_f64(args.duration_s), Duration::from_secs_f64(args.warmup_s));
    load::closed(&client, &target, args.clients, warmup).await;
    let (mut saturation, mut fixed): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
    for _ in 0..args.repeats {
        saturation.push(load::closed(&client, &target, args.clients, duration).await);
        fixed.push(load::open(&client, &target, args.rate, duration).await);
    }
    let rss = pid.map_or(f64::NAN, rss::tree_mib);
    let mut row = Row::from_runs(label, stream, &saturation, &fixed, rss);
    if row.saturation < OVER_CAPACITY * args.rate {
        row.flag(&format!("at or over its capacity at {} req/s: its p50/p99 include queueing", args.rate));
    }
    row
}

/// A port nothing listens on now (bound and released; the system binds it right after).
fn free_port() -> u16 {
    free_addr().map_or(0, |addr| addr.port())
}
