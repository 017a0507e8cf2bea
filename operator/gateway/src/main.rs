//! `pice-gateway` binary: parses arguments and runs.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pice_gateway::cli::main(pice_gateway::cli::Args::parse()).await?;
    Ok(())
}
