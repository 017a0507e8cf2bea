//! B2's result file: docs/benchmarks/B2.md (setup, the table, each system's settings, how the
//! PICE gateway compares, provenance) and its two plots.

use std::fmt::Write as _;

use anyhow::Context;

use super::cli::B2Args;
use super::plot::{self, Bars};
use super::stats::{Measured, Row, table};
use super::system::System;
use crate::bench::provenance::Provenance;

const THROUGHPUT_PNG: &str = "B2-throughput.png";
const LATENCY_PNG: &str = "B2-latency.png";

/// Writes B2.md and the plots under `--out`.
pub fn write(args: &B2Args, measured: &[Measured], provenance: &Provenance) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let rows: Vec<Row> = measured.iter().flat_map(|m| m.rows.iter().cloned()).collect();
    plots(args, measured)?;
    let md = markdown(args, measured, &rows, provenance).context("formatting B2.md")?;
    let path = args.out_path("B2.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("b2: wrote {}", path.display());
    Ok(())
}

fn markdown(
    args: &B2Args,
    measured: &[Measured],
    rows: &[Row],
    provenance: &Provenance,
) -> Result<String, std::fmt::Error> {
    let mut md = String::from("# B2 — gateway overhead against the routers people use\n\n");
    writeln!(
        md,
        "Cloud-only pass-through in front of a zero-delay OpenAI-compatible backend on loopback (it \
         answers every chat completion at once with {} words; JSON or SSE with one chunk per word, \
         usage and `[DONE]`). Every system is its own process; the same Rust load generator \
         (reqwest, HTTP/1.1 keep-alive) drives all of them in the same run, one after another.\n",
        args.answer_tokens
    )?;
    writeln!(
        md,
        "- **req/s at saturation**: {} closed-loop clients, median of {} runs of {} s after {} s of warm-up.",
        args.clients, args.repeats, args.duration_s, args.warmup_s
    )?;
    writeln!(
        md,
        "- **p50/p99**: open loop at a fixed {} req/s, median of {} runs of {} s; **added** = the \
         system's minus the direct backend's of the same kind (negative values are noise).",
        args.rate, args.repeats, args.duration_s
    )?;
    writeln!(md, "- **RSS**: VmRSS summed over the system's process tree after its load.\n")?;
    md.push_str(&table(rows));
    writeln!(
        md,
        "\n![requests/s at saturation]({THROUGHPUT_PNG})\n![latency at a fixed rate]({LATENCY_PNG})\n"
    )?;
    verdict(&mut md, rows)?;
    writeln!(md, "\n## Settings\n")?;
    for one in measured {
        writeln!(md, "- {}: {}", one.system.label(), one.settings)?;
    }
    writeln!(
        md,
        "\nThe load generator, the backend and the system under test share the machine's cores, so \
         a system's requests/s is also bounded by what the client and the backend use.\n\n## Provenance\n"
    )?;
    provenance.write(&mut md)?;
    Ok(md)
}

/// How the PICE gateway ranks among the proxies on each figure, per response kind.
fn verdict(md: &mut String, rows: &[Row]) -> std::fmt::Result {
    let pice = System::Pice.label();
    let others = [System::Direct.label(), System::PiceBaseline.label()];
    for stream in [false, true] {
        let kind = if stream { "SSE" } else { "JSON" };
        let proxies: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.stream == stream && !others.contains(&r.system.as_str()) && r.saturation.is_finite()
            })
            .collect();
        let Some(ours) = proxies.iter().find(|r| r.system == pice) else { continue };
        let rank = |key: fn(&Row) -> f64, higher_better: bool| {
            let mut sorted = proxies.clone();
            sorted.sort_by(
                |a, b| if higher_better { key(b).total_cmp(&key(a)) } else { key(a).total_cmp(&key(b)) },
            );
            sorted.iter().position(|r| r.system == pice).map_or(0, |p| p + 1)
        };
        let best = |key: fn(&Row) -> f64, higher_better: bool| {
            proxies
                .iter()
                .copied()
                .reduce(|a, b| if (key(a) > key(b)) == higher_better { a } else { b })
                .map(|r| (r.system.clone(), key(r)))
                .unwrap_or_default()
        };
        let (rate_best, rate) = best(|r| r.saturation, true);
        let (p50_best, p50) = best(|r| r.p50, false);
        let (p99_best, p99) = best(|r| r.p99, false);
        writeln!(
            md,
            "- {kind}: PICE gateway ranks {} of {} on req/s ({:.0}; best {rate_best} {rate:.0}), {} on p50 \
             ({:.2} ms; best {p50_best} {p50:.2}), {} on p99 ({:.2} ms; best {p99_best} {p99:.2}).",
            rank(|r| r.saturation, true),
            proxies.len(),
            ours.saturation,
            rank(|r| r.p50, false),
            ours.p50,
            rank(|r| r.p99, false),
            ours.p99,
        )?;
    }
    Ok(())
}

fn plots(args: &B2Args, measured: &[Measured]) -> anyhow::Result<()> {
    plot::register_font(&args.font)?;
    let groups: Vec<String> = measured.iter().map(|m| short(m.system).to_owned()).collect();
    let pick = |stream: bool, value: fn(&Row) -> f64| -> Vec<f64> {
        measured.iter().map(|m| m.rows.iter().find(|r| r.stream == stream).map_or(f64::NAN, value)).collect()
    };
    let throughput = [
        ("JSON".to_owned(), pick(false, |r| r.saturation)),
        ("SSE".to_owned(), pick(true, |r| r.saturation)),
    ];
    let title = format!("requests/s at saturation ({} clients)", args.clients);
    let bars = Bars { title: &title, y_desc: "requests/s", groups: &groups, series: &throughput };
    plot::draw(&bars, &args.out_path(THROUGHPUT_PNG))?;
    let latency = [
        ("p50 JSON".to_owned(), pick(false, |r| r.p50)),
        ("p99 JSON".to_owned(), pick(false, |r| r.p99)),
        ("p50 SSE".to_owned(), pick(true, |r| r.p50)),
        ("p99 SSE".to_owned(), pick(true, |r| r.p99)),
    ];
    let title = format!("latency at {} req/s (direct backend first)", args.rate);
    let bars = Bars { title: &title, y_desc: "milliseconds", groups: &groups, series: &latency };
    plot::draw(&bars, &args.out_path(LATENCY_PNG))
}

fn short(system: System) -> &'static str {
    match system {
        System::Direct => "direct",
        System::Pice => "PICE",
        System::PiceBaseline => "PICE base",
        System::VllmRouter => "vllm-router",
        System::SglangRouter => "sglang-router",
        System::Envoy => "Envoy",
        System::Litellm => "LiteLLM",
    }
}
