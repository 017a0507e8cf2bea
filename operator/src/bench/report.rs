//! B1's Markdown report: how it was run, the headline table against the targets, and every
//! load level of every system.

use std::fmt::Write as _;
use std::path::Path;

use pice_edge_agent::sim::Profile;

use super::cli::B1Args;
use super::provenance::Provenance;
use super::stats::Summary;
use super::sweep::{Series, System};

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

/// Headline numbers of one series.
struct Headline {
    at_slo: f64,
    cloud_tokens: f64,
    edge_tokens: f64,
    moderate: Option<Summary>,
}

fn headline(series: &Series, args: &B1Args) -> Headline {
    let summaries = || series.points.iter().map(|(_, s)| s);
    let at_slo = summaries().filter(|s| s.p90 <= args.slo_p90_s).map(|s| s.throughput).fold(0.0, f64::max);
    let cloud_tokens = summaries().next().map_or(f64::NAN, |s| s.cloud_tokens);
    let edge_tokens = summaries().next().map_or(f64::NAN, |s| s.edge_tokens);
    let moderate = series.points.iter().find(|(rate, _)| *rate == args.moderate_rate).map(|(_, s)| s.clone());
    Headline { at_slo, cloud_tokens, edge_tokens, moderate }
}

/// Requests/s the emulated hardware allows a system at most: the cloud's decode capacity ÷ its
/// tokens per request and, for the PICE systems, the edge devices' ÷ theirs (SoT's "edge" is
/// the cloud, already counted).
struct Bound {
    cloud: f64,
    edge: Option<f64>,
}

impl Bound {
    fn of(context: &Context, system: System, h: &Headline) -> Self {
        let uses_edge = matches!(system, System::Progressive | System::Auto) && h.edge_tokens > 0.0;
        let edge_capacity = capacity(context.edge) * context.args.edges as f64;
        Self {
            cloud: capacity(context.cloud) / h.cloud_tokens,
            edge: uses_edge.then(|| edge_capacity / h.edge_tokens),
        }
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
        "- Simulated (GPU arithmetic only): cloud `{}` (decode capacity {:.0} tokens/s at batch {}), {} edge devices `{}` ({:.0} tokens/s each at batch {}). Real: every process, socket, gRPC call and the gateway.",
        context.cloud.name,
        capacity(context.cloud),
        context.cloud.max_batch,
        args.edges,
        context.edge.name,
        capacity(context.edge),
        context.edge.max_batch
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
        "| system | req/s at p90 ≤ SLO | × cloud-only | cloud tok/req | edge tok/req | analytic bound req/s | at SLO / bound | p50 s at moderate | p50 vs cloud-only | TTFT p50 s at moderate | progressive share at moderate |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for one in series {
        let h = headline(one, args);
        let bound = Bound::of(context, one.system, &h);
        let ratio = cloud.as_ref().map_or(f64::NAN, |c| h.at_slo / c.at_slo);
        let (p50, ttft, share) = h
            .moderate
            .as_ref()
            .map_or((f64::NAN, f64::NAN, f64::NAN), |m| (m.p50, m.ttft_p50, m.progressive_share));
        let cloud_p50 = cloud.as_ref().and_then(|c| c.moderate.as_ref()).map_or(f64::NAN, |m| m.p50);
        writeln!(
            md,
            "| {} | {:.2} | {:.2}x | {:.0} | {:.0} | {} | {:.0} % | {} | {:+.0} % | {} | {:.0} % |",
            one.name(),
            h.at_slo,
            ratio,
            h.cloud_tokens,
            h.edge_tokens,
            bound.describe(),
            100.0 * h.at_slo / bound.value(),
            seconds(p50),
            100.0 * (p50 / cloud_p50 - 1.0),
            seconds(ttft),
            100.0 * share
        )?;
    }
    writeln!(
        md,
        "\nThroughput is requests completed per second from the first completion of a level to its last (the offered rate below saturation, the capacity above); \"req/s at p90 ≤ SLO\" is the highest such value among the load levels that met the SLO, so its resolution is the rate grid. Cloud tokens per request are the cloud simulator's own counter over the lowest load level, divided by the requests completed; edge tokens per request are the gateway's count (every candidate of every point). The analytic bound is the cloud's decode capacity ÷ cloud tokens per request and, for the PICE systems, the edge devices' total decode capacity ÷ edge tokens per request, whichever is lower (prefill not counted).\n"
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
        "| offered req/s | sent | completed | req/s | p50 s | p90 s | TTFT p50 s | answer tok/req | cloud tok/req | edge tok/req | progressive share | mode/reason |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (rate, s) in &series.points {
        writeln!(
            md,
            "| {rate} | {} | {} | {:.2} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} % | {} |",
            s.sent,
            s.completed,
            s.throughput,
            seconds(s.p50),
            seconds(s.p90),
            seconds(s.ttft_p50),
            s.answer_tokens,
            s.cloud_tokens,
            s.edge_tokens,
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
    use pice_edge_agent::sim::profiles;

    use super::*;

    #[test]
    fn the_cloud_profile_decodes_fastest_at_its_largest_batch() {
        let Some(cloud) = profiles::named("cloud-llama70b-h100x4") else { panic!("profile missing") };
        assert!((capacity(&cloud) - 128.0 / 0.080).abs() < 1.0, "{}", capacity(&cloud));
    }
}
