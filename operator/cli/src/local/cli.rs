//! `pice local`'s arguments and wiring: read and check the pool, plan, start, print how to use
//! it (or run the demo), stop on Ctrl-C or SIGTERM.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use super::bins::{Bins, EDGE_AGENT, GATEWAY, SIM};
use super::plan::{Cloud, EdgeSource, Plan, plan};
use super::stack::Stack;
use super::{LocalError, demo, model_file, pool_file, usage};

/// `pice local`'s arguments.
#[derive(Clone, Debug, ClapArgs)]
pub struct LocalArgs {
    /// The InferencePool YAML file.
    #[arg(short = 'f', long, env = "PICE_LOCAL_FILE")]
    pub file: PathBuf,
    /// Port of the gateway's OpenAI-compatible API on 127.0.0.1.
    #[arg(long, env = "PICE_LOCAL_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Real edge models: llama.cpp in each edge agent on a small GGUF model (SmolLM2-135M,
    /// fetched once, unless --model-path is given). Needs pice-edge-agent built with
    /// `--features llama`. The cloud stays simulated unless --cloud-url is given.
    #[arg(long, env = "PICE_LOCAL_REAL", conflicts_with = "edge_url")]
    pub real: bool,
    /// GGUF file of the edge models with --real.
    #[arg(long, env = "PICE_MODEL_PATH", requires = "real")]
    pub model_path: Option<PathBuf>,
    /// Your OpenAI-compatible cloud LLM server (base URL, with or without /v1), instead of
    /// the simulator; it must serve the pool's cloud.model.
    #[arg(long, env = "PICE_LOCAL_CLOUD_URL")]
    pub cloud_url: Option<String>,
    /// Your OpenAI-compatible edge model servers (base URLs), instead of simulators: one for
    /// every edge model, or one per edge model in the pool's order; comma-separated or repeated.
    #[arg(long, env = "PICE_LOCAL_EDGE_URL", value_delimiter = ',')]
    pub edge_url: Vec<String>,
    /// Once ready, ask one question in progressive and in cloud-only mode, print the answer
    /// and a comparison, then stop.
    #[arg(long, env = "PICE_LOCAL_DEMO")]
    pub demo: bool,
    /// Directory of pice-sim, pice-edge-agent and pice-gateway; default: beside this executable.
    #[arg(long, env = "PICE_LOCAL_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Directory for the processes' logs and the gateway's configuration; default: a new
    /// directory under the system's temporary directory.
    #[arg(long, env = "PICE_LOCAL_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

/// `pice local`: runs until Ctrl-C or SIGTERM (or the end of the demo), then stops every process.
pub async fn run(args: LocalArgs) -> Result<(), LocalError> {
    let pool = pool_file::load(&args.file)?;
    println!(
        "pice local: pool {:?} from {} is valid",
        kube::ResourceExt::name_any(&pool),
        args.file.display()
    );
    let bins = Bins::locate(args.bin_dir.as_deref())?;
    for name in [SIM, EDGE_AGENT, GATEWAY] {
        bins.path(name)?;
    }
    check_port(args.port)?;
    let edge = if args.real {
        EdgeSource::Llama(model_file::resolve(args.model_path.as_deref()).await?)
    } else if args.edge_url.is_empty() {
        EdgeSource::Sim
    } else {
        EdgeSource::Urls(args.edge_url.clone())
    };
    let plan = plan(&pool, args.cloud_url.as_deref(), &edge)?;
    let log_dir = log_dir(args.log_dir.as_deref())?;
    announce(&plan, args.real, &log_dir);
    let stack = tokio::select! {
        stack = Stack::start(&plan, &bins, args.port, &log_dir) => stack?,
        () = pice_wire::shutdown::signal() => {
            println!("\nStopped while starting; every started process was stopped.");
            return Ok(());
        }
    };
    let outcome = serve(&stack, &plan, args.demo).await;
    let count = stack.pids().len();
    stack.stop().await;
    println!("Stopped {count} processes.");
    outcome
}

/// Prints how to use the data plane, or runs the demo; returns when done or asked to stop.
async fn serve(stack: &Stack, plan: &Plan, demo: bool) -> Result<(), LocalError> {
    if demo {
        return tokio::select! {
            outcome = demo::run(&stack.url, &plan.pool) => outcome,
            () = pice_wire::shutdown::signal() => Ok(()),
        };
    }
    println!("{}", usage::ready_text(plan, &stack.url));
    pice_wire::shutdown::signal().await;
    println!("\nStopping ...");
    Ok(())
}

/// Fails early, with advice, when the gateway's port is taken.
fn check_port(port: u16) -> Result<(), LocalError> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => Err(LocalError::PortInUse { port }),
        Err(source) => Err(LocalError::Port { port, source }),
    }
}

fn log_dir(given: Option<&Path>) -> Result<PathBuf, LocalError> {
    let dir = given.map_or_else(
        || std::env::temp_dir().join(format!("pice-local-{}", std::process::id())),
        Path::to_owned,
    );
    std::fs::create_dir_all(&dir).map_err(|source| LocalError::LogDir { path: dir.clone(), source })?;
    Ok(dir)
}

/// What will run, what of it is simulated, and where the logs go.
fn announce(plan: &Plan, real: bool, log_dir: &Path) {
    println!(
        "  starting a cloud LLM, {} edge agent(s) and a gateway (logs in {})",
        plan.edges.len(),
        log_dir.display()
    );
    if let Some(note) = usage::simulated_note(plan) {
        println!("{note}");
    }
    if real && matches!(plan.cloud, Cloud::Sim { .. }) {
        println!(
            "  note: this repository has no llama-backed OpenAI-compatible cloud server, so with --real \
             the cloud LLM is still SIMULATED (pass --cloud-url for a real one)"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::{CommandFactory, Parser};

    use crate::cli::{Args, Command};

    use super::*;

    #[test]
    fn arguments_are_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn local_takes_a_file_and_user_urls_but_not_real_models_with_edge_urls() {
        let args =
            Args::try_parse_from(["pice", "local", "-f", "pool.yaml", "--edge-url", "http://a,http://b"])
                .unwrap();
        let Command::Local(local) = args.command else { panic!("parsed as {:?}", args.command) };
        assert_eq!((local.port, local.edge_url.len()), (8080, 2));
        assert!(
            Args::try_parse_from(["pice", "local", "-f", "p.yaml", "--real", "--edge-url", "http://a"])
                .is_err()
        );
        assert!(Args::try_parse_from(["pice", "local", "-f", "p.yaml", "--model-path", "m.gguf"]).is_err());
    }

    #[test]
    fn a_port_in_use_is_named_with_the_flag_to_change_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let error = check_port(port).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "port {port} is in use on 127.0.0.1: stop what listens there or pick another port with --port"
            )
        );
    }
}
