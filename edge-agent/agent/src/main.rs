//! `pice-edge-agent`: the gRPC expansion service beside an edge model server.

use clap::Parser;
use pice_edge_agent::cli::{Args, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await?;
    Ok(())
}
