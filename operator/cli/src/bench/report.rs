//! B1's Markdown report: how it was run, the headline table against the targets, and every
//! load level of every system.

use std::fmt::Write as _;
use std::path::Path;

use pice_sim::Profile;

use super::cli::B1Args;
use super::provenance::Provenance;
use super::series::{Series, System};
use super::stats::Summary;

/// What the report says about the set-up.
pub struct Context<'a> {
    pub args: &'a B1Args,
    pub cloud: &'a Profile,
    pub edge: &'a Profile,
    pub questions: usize,
    pub provenance: &'a Provenance,
}

/// Decode tokens per second the profile reaches at its best batch size (prefill not counted).
pub fn capacity(profile: &Profile) -> f64 {
    (1..=profile.max_batch).map(|b| b as f64 / profile.tpot(b).as_secs_f64()).fold(0.0, f64::max)
}

/// Seconds of one device of `profile` that prefilling `prompt` tokens and generating `tokens`
/// tokens take at full batch.
fn device_seconds(profile: &Profile, prompt: f64, tokens: f64) -> f64 {
    prompt / profile.prefill_tokens_per_second + tokens / capacity(profile)
}

/// Headline numbers of one series.
struct Headline {
    /// Throughput of the busiest level that met the SLO, and that level's answer length.
    at_slo: f64,
    answer_tokens_at_slo: f64,
    /// The lowest load level: the work per request without overload.
    light: Summary,
    moderate: Option<Summary>,
}

fn headline(series: &Series, args: &B1Args) -> Headline {
    let within_slo = series.points.iter().map(|(_, s)| s).filter(|s| s.p90 <= args.slo_p90_s);
    let best = within_slo.max_by(|a, b| a.throughput.total_cmp(&b.throughput));
    let light = series.points.first().map(|(_, s)| s.clone()).unwrap_or_default();
    let moderate = series.points.iter().find(|(rate, _)| *rate == args.moderate_rate).map(|(_, s)| s.clone());
    Headline {
        at_slo: best.map_or(0.0, |s| s.throughput),
        answer_tokens_at_slo: best.map_or(f64::NAN, |s| s.answer_tokens),
        light,
        moderate,
    }
}

/// Requests/s the emulated hardware allows a system at most, from the work per request at the
/// lowest load: for the cloud and (PICE systems) for the edge devices together, the seconds a
/// request takes of a device's time are the prompt tokens it prefilled ÷ the prefill rate plus
/// its generated tokens ÷ the decode capacity (the simulator stalls decoding while it
/// prefills, as a server without chunked prefill does); the bound is the lower of devices ÷
/// seconds per request. It is prefix-aware: prompt tokens a device found in its prefix cache
/// cost it nothing, on the cloud (whose counter counts only what it prefilled) and on the edge
/// (the simulated devices' own counter). SoT's "edge" is the cloud, already counted.
struct Bound {
    cloud: f64,
    edge: Option<f64>,
}

impl Bound {
    fn of(context: &Context, system: System, light: &Summary) -> Self {
        let uses_edge = matches!(system, System::Progressive | System::Auto) && light.edge_tokens > 0.0;
        let cloud = 1.0 / device_seconds(context.cloud, light.cloud_prefill, light.cloud_tokens);
        let edges = context.args.edges as f64;
        let edge = edges / device_seconds(context.edge, light.edge_prefilled, light.edge_tokens);
        Self { cloud, edge: uses_edge.then_some(edge) }
    }

    fn value(&self) -> f64 {
        self.edge.map_or(self.cloud, |edge| edge.min(self.cloud))
    }

    fn describe(&self) -> String {
        match self.edge {
            Some(edge) => format!("{:.2} (cloud {:.1}, edge {:.1})", self.value(), self.cloud, edge),
            None => format!("{:.2} (cloud)", self.cloud),
        }
    }
}

fn seconds(value: f64) -> String {
    if value.is_finite() { format!("{value:.2}") } else { "unfinished".into() }
}

/// A comparison with cloud-only, or a dash when the run had no cloud-only series.
fn against_cloud(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| "–".to_owned(), format)
}

/// Writes the report to `path`.
pub fn write(context: &Context, series: &[Series], path: &Path) -> anyhow::Result<()> {
    let mut md = String::new();
    preamble(&mut md, context)?;
    headline_table(&mut md, context, series)?;
    for one in series {
        levels(&mut md, one)?;
    }
    std::fs::write(path, md)?;
    Ok(())
}

fn preamble(md: &mut String, context: &Context) -> anyhow::Result<()> {
    let args = context.args;
    writeln!(md, "# B1: progressive vs cloud-only vs SoT on emulated hardware\n")?;
    context.provenance.write(md)?;
    writeln!(
        md,
        "- Simulated (GPU arithmetic only): cloud `{}` (decode capacity {:.0} tokens/s at batch {}, prefill {:.0} tokens/s), {} edge devices `{}` (each {:.0} tokens/s at batch {}, prefill {:.0} tokens/s; prefill stalls decoding). Real: every process, socket, gRPC call and the gateway.",
        context.cloud.name,
        capacity(context.cloud),
        context.cloud.max_batch,
        context.cloud.prefill_tokens_per_second,
        args.edges,
        context.edge.name,
        capacity(context.edge),
        context.edge.max_batch,
        context.edge.prefill_tokens_per_second
    )?;
    let links: Vec<String> = args
        .links
        .iter()
        .map(|l| format!("{} = {} ms RTT, {} Mbit/s", l.name, l.rtt_ms, l.mbit_per_s))
        .collect();
    writeln!(
        md,
        "- Emulated cloud–edge links (TCP relay in front of each edge agent): {}",
        links.join("; ")
    )?;
    writeln!(
        md,
        "- Workload: {} questions, Poisson arrivals for {} s per level (+ up to {} s to finish), max_tokens {}, {} run(s) per level (medians), SLO p90 ≤ {} s, moderate load {} req/s.\n",
        context.questions,
        args.duration_s,
        args.drain_s,
        args.max_tokens,
        args.repeats,
        args.slo_p90_s,
        args.moderate_rate
    )?;
    Ok(())
}

fn headline_table(md: &mut String, context: &Context, series: &[Series]) -> anyhow::Result<()> {
    let args = context.args;
    let cloud = series.iter().find(|s| s.system == System::CloudOnly).map(|s| headline(s, args));
    writeln!(md, "## Headline\n")?;
    writeln!(
        md,
        "| system | req/s at p90 ≤ SLO | × cloud-only | answer tok/req there (light load) | cloud tok/req | edge tok/req | cloud / edge prompt tok/req (edge prefilled) | prefix-aware bound req/s | at SLO / bound | p50 s at moderate | p50 vs cloud-only | TTFT p50 s at moderate | progressive share at moderate |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for one in series {
        let h = headline(one, args);
        let bound = Bound::of(context, one.system, &h.light);
        let ratio = against_cloud(cloud.as_ref().map(|c| h.at_slo / c.at_slo), |r| format!("{r:.2}x"));
        let (p50, ttft, share) = h
            .moderate
            .as_ref()
            .map_or((f64::NAN, f64::NAN, f64::NAN), |m| (m.p50, m.ttft_p50, m.progressive_share));
        let cloud_p50 = cloud.as_ref().and_then(|c| c.moderate.as_ref()).map(|m| m.p50);
        let p50_change = against_cloud(cloud_p50.map(|c| 100.0 * (p50 / c - 1.0)), |p| format!("{p:+.0} %"));
        writeln!(
            md,
            "| {} | {:.2} | {} | {:.0} ({:.0}) | {:.0} | {:.0} | {:.0} / {:.0} ({:.0}) | {} | {:.0} % | {} | {} | {} | {:.0} % |",
            one.name(),
            h.at_slo,
            ratio,
            h.answer_tokens_at_slo,
            h.light.answer_tokens,
            h.light.cloud_tokens,
            h.light.edge_tokens,
            h.light.cloud_prefill,
            h.light.edge_prefill,
            h.light.edge_prefilled,
            bound.describe(),
            100.0 * h.at_slo / bound.value(),
            seconds(p50),
            p50_change,
            seconds(ttft),
            100.0 * share
        )?;
    }
    writeln!(
        md,
        "\nThroughput is requests completed per second from the first completion of a level to its last (the offered rate below saturation, the capacity above); \"req/s at p90 ≤ SLO\" is the highest such value among the load levels that met the SLO, so its resolution is the rate grid. \"Answer tok/req there\" is the answer length at that level, with the lowest level's in brackets: admission keeps progressive answers at full length (a request the edge cannot expand within the deadline goes cloud-only, one past the pool's latency limit gets 429, counted as sent but not completed). Cloud tokens and prompt tokens per request are the cloud simulator's own counters over the lowest load level, divided by the requests completed; edge tokens per request are the gateway's count (every candidate of every point), edge prompt tokens the edge agents' counters (finished expansions), and in brackets the tokens the simulated edge devices actually prefilled (the rest were in their prefix cache). The prefix-aware analytic bound is, for the cloud and for the PICE systems' edge devices, the devices ÷ the device-seconds a request needs (prefilled prompt tokens ÷ prefill rate + generated tokens ÷ decode capacity), whichever is lower.\n"
    )?;
    writeln!(
        md,
        "![latency vs offered load](B1-latency.png)\n\n![throughput vs offered load](B1-throughput.png)\n"
    )?;
    Ok(())
}

fn levels(md: &mut String, series: &Series) -> anyhow::Result<()> {
    writeln!(md, "### {}\n", series.name())?;
    writeln!(
        md,
        "| offered req/s | sent | completed | 429 | req/s | p50 s | p90 s | TTFT p50 s | answer tok/req | cloud tok/req | edge tok/req | cloud / edge prompt tok/req (edge prefilled) | progressive share | mode/reason |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (rate, s) in &series.points {
        writeln!(
            md,
            "| {rate} | {} | {} | {} | {:.2} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} ({:.0}) | {:.0} % | {} |",
            s.sent,
            s.completed,
            s.rejected,
            s.throughput,
            seconds(s.p50),
            seconds(s.p90),
            seconds(s.ttft_p50),
            s.answer_tokens,
            s.cloud_tokens,
            s.edge_tokens,
            s.cloud_prefill,
            s.edge_prefill,
            s.edge_prefilled,
            100.0 * s.progressive_share,
            reason_shares(&s.reasons)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// `mode/reason` shares as `cloud/unsuitable 60 %, progressive/progressive_faster 40 %`.
pub fn reason_shares(shares: &std::collections::BTreeMap<String, f64>) -> String {
    let parts: Vec<String> =
        shares.iter().map(|(reason, share)| format!("{reason} {:.0} %", 100.0 * share)).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use pice_sim::profiles;

    use super::*;

    #[test]
    fn the_cloud_profile_decodes_fastest_at_its_largest_batch() {
        let Some(cloud) = profiles::named("cloud-llama70b-h100x4") else { panic!("profile missing") };
        assert!((capacity(&cloud) - 128.0 / 0.080).abs() < 1.0, "{}", capacity(&cloud));
    }

    #[test]
    fn a_request_takes_its_prefill_and_its_decode_of_a_device() {
        let profile = Profile {
            name: "test".into(),
            model: "m".into(),
            prefill_tokens_per_second: 1000.0,
            tpot: vec![pice_sim::TpotPoint { batch: 1, ms: 10.0 }],
            max_batch: 2,
            prefix_cache_tokens: 0,
        };
        // 200 tokens/s at batch 2: 100 tokens take 0.5 s, 500 prompt tokens another 0.5 s.
        assert!((device_seconds(&profile, 500.0, 100.0) - 1.0).abs() < 1e-9);
        assert!((device_seconds(&profile, 0.0, 100.0) - 0.5).abs() < 1e-9);
    }
}
