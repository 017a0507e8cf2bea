//! `pice` binary: PICE's developer command line (`pice local`, `pice bench`); parses arguments and runs.

use std::process::ExitCode;

use clap::Parser;
use pice::cli::{Args, main as run};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
