//! The `pice` command line: its subcommands, `pice local` and `pice bench`.

use clap::{Parser, Subcommand};

use crate::bench::{self, BenchCommand};
use crate::local::{self, cli::LocalArgs};

/// PICE's developer command line.
#[derive(Clone, Debug, Parser)]
#[command(name = "pice", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run an InferencePool's data plane on this machine (gateway, edge agents, and simulated
    /// or real model servers), from the same YAML file a cluster takes.
    Local(LocalArgs),
    /// Run a benchmark (docs/benchmarks.md) on this machine and write its results (Markdown and
    /// PNG plots) under docs/benchmarks/.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Runs the command line.
pub async fn main(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Local(local) => Ok(local::cli::run(local).await?),
        Command::Bench(bench) => bench::main(bench).await,
    }
}
