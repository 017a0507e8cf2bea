//! `pice bench b2`'s arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::system::System;

/// B2: what the PICE gateway adds in cloud-only pass-through, against vllm-router,
/// sglang-router, Envoy and LiteLLM in front of the same zero-delay backend.
#[derive(Clone, Debug, Parser)]
#[command(about)]
pub struct B2Args {
    /// Directory holding the built `pice-gateway`.
    #[arg(long, env = "PICE_BENCH_BIN_DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Directory holding another build of `pice-gateway` (e.g. an earlier revision) to measure
    /// right after the current one, in the same run, as "PICE gateway (baseline build)".
    #[arg(long, env = "PICE_BENCH_BASELINE_BIN_DIR")]
    pub baseline_bin_dir: Option<PathBuf>,
    /// Directory of the routers' virtual environments (deploy/bench/install-routers.sh).
    #[arg(long, env = "PICE_BENCH_ROUTERS_DIR", default_value = "~/.cache/pice/b2")]
    pub routers_dir: String,
    /// Systems to run, comma-separated; the direct backend always runs first (the baseline).
    #[arg(
        long,
        env = "PICE_BENCH_SYSTEMS",
        value_delimiter = ',',
        default_value = "pice,vllm-router,sglang-router,envoy,litellm"
    )]
    pub systems: Vec<System>,
    /// Concurrent closed-loop clients of the saturation runs.
    #[arg(long, env = "PICE_BENCH_CLIENTS", default_value_t = 32)]
    pub clients: usize,
    /// Fixed offered rate of the latency runs, requests per second (open loop).
    #[arg(long, env = "PICE_BENCH_RATE", default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds each measured run lasts.
    #[arg(long, env = "PICE_BENCH_DURATION_S", default_value_t = 4.0)]
    pub duration_s: f64,
    /// Seconds of unmeasured load before the runs of each system and response kind.
    #[arg(long, env = "PICE_BENCH_WARMUP_S", default_value_t = 2.0)]
    pub warmup_s: f64,
    /// Measured runs of each kind; the table shows medians.
    #[arg(long, env = "PICE_BENCH_REPEATS", default_value_t = 3)]
    pub repeats: usize,
    /// Tokens (words) in every backend answer.
    #[arg(long, env = "PICE_BENCH_ANSWER_TOKENS", default_value_t = 32)]
    pub answer_tokens: usize,
    /// Worker threads or processes each router may use (Envoy's --concurrency, LiteLLM's
    /// --num_workers, the Tokio workers of the PICE gateway and of the backend).
    #[arg(long, env = "PICE_BENCH_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Where B2.md and the plots go.
    #[arg(long, env = "PICE_BENCH_OUT", default_value = "docs/benchmarks")]
    pub out: PathBuf,
    /// TrueType font for the plots' text.
    #[arg(long, env = "PICE_BENCH_FONT", default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    pub font: PathBuf,
    /// Serve only the zero-delay backend on this address (how the runner starts its backend
    /// process; it prints `listening on ADDR` first).
    #[arg(long, hide = true)]
    pub serve_backend: Option<SocketAddr>,
}

impl B2Args {
    /// Where the report or plot `file` goes.
    pub fn out_path(&self, file: &str) -> std::path::PathBuf {
        self.out.join(file)
    }
}

impl B2Args {
    /// The routers' directory with a leading `~` expanded.
    pub fn routers_dir(&self) -> PathBuf {
        match self.routers_dir.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from(&self.routers_dir), |home| PathBuf::from(home).join(rest)),
            None => PathBuf::from(&self.routers_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_well_formed() {
        B2Args::command().debug_assert();
    }

    #[test]
    fn systems_parse_from_a_comma_separated_list_and_the_routers_dir_expands_home() {
        let args = B2Args::try_parse_from(["b2", "--systems", "pice,envoy", "--routers-dir", "~/r"]).unwrap();
        assert_eq!(args.systems, [System::Pice, System::Envoy]);
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(args.routers_dir(), PathBuf::from(home).join("r"));
        }
        assert!(B2Args::try_parse_from(["b2", "--systems", "nginx"]).is_err());
    }
}
