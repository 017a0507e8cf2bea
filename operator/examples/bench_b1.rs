//! Benchmark B1 (BENCHMARKS.md): cloud-only, SoT-on-cloud, PICE progressive and PICE auto on
//! simulated cloud and edge hardware under Poisson load; writes `docs/benchmarks/B1.md` and
//! its plots. Needs the release binaries (`make bench-b1` builds them first). Ctrl-C stops it
//! and every process it started.
//!
//! ```sh
//! cargo run --release -p pice-operator --example bench_b1 -- --help
//! ```

use clap::Parser;
use pice_operator::bench::{self, B1Args};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = B1Args::parse();
    tokio::select! {
        result = bench::run(args) => result,
        () = pice_edge_agent::shutdown::signal() => Ok(()),
    }
}
