//! `pice bench`: the benchmarks of `docs/benchmarks.md` that run without a cluster, and the
//! answer-quality comparison ([`quality`]).
//!
//! B1: cloud-only, SoT-on-cloud, PICE progressive and PICE `auto` on the same emulated hardware,
//! under open-loop Poisson load, at several cloud–edge link settings. Real parts: the `pice-sim`, `pice-edge-agent` and `pice-gateway` processes, their sockets,
//! gRPC and HTTP; only the GPU arithmetic is simulated (the profiles in
//! `edge-agent/sim/src/profiles.rs`) and the cloud–edge link is emulated by [`link`].

pub mod b2;
pub mod cli;
pub mod link;
pub mod load;
pub mod plot;
pub mod provenance;
pub mod quality;
pub mod report;
pub mod series;
pub mod stats;
pub mod sweep;

pub use cli::B1Args;
pub use sweep::run;

use clap::Subcommand;

/// `pice bench`'s benchmarks.
#[derive(Clone, Debug, Subcommand)]
pub enum BenchCommand {
    /// B1: cloud-only vs SoT-on-cloud vs PICE progressive and auto on simulated cloud and edge
    /// hardware under Poisson load; writes B1.md and its plots. Needs the release binaries
    /// (`make bench-b1` builds them first).
    B1(B1Args),
    /// B2: the PICE gateway's overhead in cloud-only pass-through against vllm-router,
    /// sglang-router, Envoy and LiteLLM in front of a zero-delay backend; writes B2.md and its
    /// plots. Needs the release binaries and the routers (`make bench-b2` sets both up).
    B2(b2::B2Args),
    /// Answer quality: a running gateway answers each question cloud-only and progressively,
    /// and a judge model compares the two in both orders; writes quality.md.
    Quality(quality::QualityArgs),
}

/// Runs a benchmark until it ends or Ctrl-C/SIGTERM stops it and every process it started.
pub async fn main(command: BenchCommand) -> anyhow::Result<()> {
    pice_wire::crypto::install_default_provider();
    let bench = async {
        match command {
            BenchCommand::B1(args) => run(args).await,
            BenchCommand::B2(args) => b2::run(args).await,
            BenchCommand::Quality(args) => quality::run(args).await,
        }
    };
    tokio::select! {
        result = bench => result,
        () = pice_wire::shutdown::signal() => Ok(()),
    }
}
