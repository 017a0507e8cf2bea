//! `pice-sim`'s command line and its `run`: bind, announce the address, serve until stopped.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use clap::builder::PossibleValuesParser;
use prometheus::Registry;
use tokio::net::TcpListener;
use tracing::info;

use super::server::{SimState, router};
use super::{Simulator, profiles};
use crate::Error;
use pice_wire::shutdown;
use pice_wire::telemetry::LogArgs;

/// An OpenAI-compatible server that emulates an LLM server's timing; its answers are simulated.
#[derive(Clone, Debug, Parser)]
#[command(name = "pice-sim", version, about)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed on stdout
    /// as the first line, `listening on ADDR`.
    #[arg(long, env = "PICE_SIM_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Hardware profile whose timing to follow.
    #[arg(long, env = "PICE_SIM_PROFILE", default_value = profiles::DEFAULT_PROFILE,
          value_parser = PossibleValuesParser::new(profiles::NAMES))]
    pub profile: String,
    /// Seed of the text generator (a request's `seed` overrides it).
    #[arg(long, env = "PICE_SIM_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Model name to serve (reported with a `-simulated` suffix); default: the profile's model.
    #[arg(long, env = "PICE_SIM_MODEL")]
    pub model: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Runs the simulator until SIGTERM or Ctrl-C.
pub async fn run(args: SimArgs) -> Result<(), Error> {
    args.log.init();
    let profile = profiles::named(&args.profile)
        .ok_or_else(|| Error::Config(format!("unknown profile {:?}", args.profile)))?;
    let model = args.model.clone().unwrap_or_else(|| profile.model.clone());
    let profile_name = profile.name.clone();
    let state = SimState::new(Simulator::start(profile, args.seed), &model, Registry::new())?;
    let listener =
        TcpListener::bind(args.listen).await.map_err(|source| Error::Bind { addr: args.listen, source })?;
    let addr = listener.local_addr().map_err(Error::Http)?;
    announce(addr)?;
    info!(%addr, profile = %profile_name, %model, "pice-sim serving simulated completions");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown::signal()).await.map_err(Error::Http)
}

/// The first stdout line, which scripts and tests read to find the port.
fn announce(addr: SocketAddr) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).map_err(Error::Http)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_well_formed() {
        SimArgs::command().debug_assert();
    }

    #[test]
    fn unknown_profiles_are_refused_by_the_parser() {
        let parsed = SimArgs::try_parse_from(["pice-sim", "--profile", "gpu-from-mars"]);
        assert!(parsed.is_err());
        let parsed = SimArgs::try_parse_from(["pice-sim", "--profile", "edge-smollm-cpu"]);
        assert!(parsed.is_ok_and(|args| args.profile == "edge-smollm-cpu"));
    }
}
