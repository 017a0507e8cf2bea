//! `pice bench b1`'s arguments.

use std::path::PathBuf;

use clap::Parser;

use super::link::LinkSetting;
use super::series::System;

/// B1: cloud-only vs SoT-on-cloud vs PICE progressive vs PICE auto under Poisson load.
#[derive(Clone, Debug, Parser)]
#[command(about)]
pub struct B1Args {
    /// Directory holding the built `pice-sim`, `pice-edge-agent` and `pice-gateway`.
    #[arg(long, env = "PICE_BENCH_BIN_DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Question files (`label;request` CSV); the workload cycles through all their questions.
    #[arg(
        long,
        env = "PICE_BENCH_QUESTIONS",
        value_delimiter = ',',
        default_value = "data/questions/vicuna80.csv,data/questions/wizardlm.csv"
    )]
    pub questions: Vec<PathBuf>,
    /// Profile of the simulated cloud LLM server.
    #[arg(long, env = "PICE_BENCH_CLOUD_PROFILE", default_value = "cloud-llama70b-h100x4")]
    pub cloud_profile: String,
    /// Profile of each simulated edge device.
    #[arg(long, env = "PICE_BENCH_EDGE_PROFILE", default_value = "edge-qwen1.5b-jetson-orin")]
    pub edge_profile: String,
    /// Edge devices (one edge agent process each, with the simulator backend).
    #[arg(long, env = "PICE_BENCH_EDGES", default_value_t = 12)]
    pub edges: usize,
    /// Emulated cloud–edge links, `name:rtt_ms:mbit_per_s`, comma-separated.
    #[arg(long, env = "PICE_BENCH_LINKS", value_delimiter = ',', default_value = "metro:20:200,wan:100:20")]
    pub links: Vec<LinkSetting>,
    /// Systems to run, comma-separated.
    #[arg(
        long,
        env = "PICE_BENCH_SYSTEMS",
        value_delimiter = ',',
        default_value = "cloud-only,sot,progressive,auto"
    )]
    pub systems: Vec<System>,
    /// Offered loads, requests per second, ascending.
    #[arg(long, env = "PICE_BENCH_RATES", value_delimiter = ',', default_value = "2,4,6,8,10,12,13,14,16")]
    pub rates: Vec<f64>,
    /// Seconds of arrivals per load level.
    #[arg(long, env = "PICE_BENCH_DURATION_S", default_value_t = 25.0)]
    pub duration_s: f64,
    /// Seconds after the last arrival that requests may still finish; later ones count as
    /// unfinished (latency above any percentile).
    #[arg(long, env = "PICE_BENCH_DRAIN_S", default_value_t = 15.0)]
    pub drain_s: f64,
    /// Runs per load level; the tables show medians.
    #[arg(long, env = "PICE_BENCH_REPEATS", default_value_t = 3)]
    pub repeats: usize,
    /// Token budget of every request. The default is about the length of a progressive answer
    /// on the default profiles, so every system writes answers of about the same length.
    #[arg(long, env = "PICE_BENCH_MAX_TOKENS", default_value_t = 270)]
    pub max_tokens: u32,
    /// Service-level objective on p90 end-to-end latency, seconds.
    #[arg(long, env = "PICE_BENCH_SLO_P90_S", default_value_t = 15.0)]
    pub slo_p90_s: f64,
    /// The "moderate load" of the latency target, requests per second (one of --rates).
    #[arg(long, env = "PICE_BENCH_MODERATE_RATE", default_value_t = 2.0)]
    pub moderate_rate: f64,
    /// Where B1.md and the plots go.
    #[arg(long, env = "PICE_BENCH_OUT", default_value = "docs/benchmarks")]
    pub out: PathBuf,
    /// TrueType font for the plots' text.
    #[arg(long, env = "PICE_BENCH_FONT", default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    pub font: PathBuf,
    /// Seed of arrivals and question order.
    #[arg(long, env = "PICE_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_well_formed() {
        B1Args::command().debug_assert();
    }
}
