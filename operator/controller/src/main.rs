//! `pice-operator` binary: parses arguments and runs.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pice_operator::run::main(pice_operator::run::Args::parse()).await
}
