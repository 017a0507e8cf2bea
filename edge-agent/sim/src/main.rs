//! `pice-sim`: an OpenAI-compatible server with a simulated model's timing.

use clap::Parser;
use pice_sim::cli::{SimArgs, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(SimArgs::parse()).await?;
    Ok(())
}
