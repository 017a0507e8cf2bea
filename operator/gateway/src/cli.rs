//! `pice-gateway`'s command line: serving (the default) and the router's `train` and `eval`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use prometheus::Registry;
use tracing::info;

use super::auth::ApiKeys;
use super::router::{self, Router};
use super::server::{self, Discovery, Settings, StartError};
use super::state::Limits;
use pice_api::gateway_config::GatewayConfig;
use pice_wire::telemetry::LogArgs;
use pice_wire::tls::ClientTlsFiles;

/// The PICE progressive gateway: an OpenAI-compatible API that answers on the cloud LLM or
/// sketches there and expands the points on edge agents.
#[derive(Clone, Debug, Parser)]
#[command(name = "pice-gateway", version, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What else the binary can do.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Train or evaluate the router that picks progressive or cloud-only in `auto` mode.
    Router {
        #[command(subcommand)]
        command: RouterCommand,
    },
}

/// The router's commands; both read labelled question files (`label;request` CSV, label 1 =
/// suitable for sketch-and-expand).
#[derive(Clone, Debug, Subcommand)]
pub enum RouterCommand {
    /// Train a router model on the files and write it to --out (deterministic: the same files
    /// give the same model). Point a gateway at it with --router-model.
    Train {
        /// Where to write the model (JSON).
        #[arg(long)]
        out: PathBuf,
        /// L2 penalty on the weights.
        #[arg(long, default_value_t = router::train::Settings::default().regularization)]
        regularization: f64,
        /// Question files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Cross-validate a router trained on the files against the old rules and the constant
    /// answer, on fixed splits too, and time the model in use; prints Markdown.
    Eval {
        /// Folds of the cross-validation.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..))]
        folds: u32,
        /// Repeats of the cross-validation with other fold assignments.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
        /// L2 penalties to compare (comma-separated); the first is used throughout (the
        /// trainer's default when none is given).
        #[arg(long, value_delimiter = ',')]
        regularization: Vec<f64>,
        /// One of the files to hold out whole: trained on the others, tested on it.
        #[arg(long)]
        holdout: Option<PathBuf>,
        /// The model to time (the built-in one by default).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Question files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// How to serve.
#[derive(Clone, Debug, ClapArgs)]
pub struct ServeArgs {
    /// The gateway configuration (JSON, as the operator renders it into the ConfigMap).
    #[arg(long, env = "PICE_GATEWAY_CONFIG", default_value = "/etc/pice/gateway.json")]
    pub config: PathBuf,
    /// Address of the HTTP API; port 0 picks a free port. The bound address is printed on
    /// stdout as the first line, `listening on ADDR`.
    #[arg(long, env = "PICE_GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Namespace whose EndpointSlices list the edge agents (in a cluster).
    #[arg(long, env = "PICE_GATEWAY_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Edge agents as host:port, comma-separated; when set, no Kubernetes discovery is used.
    #[arg(long, env = "PICE_GATEWAY_EDGE_ENDPOINTS", value_delimiter = ',')]
    pub edge_endpoints: Vec<String>,
    /// File of API keys, one per line; with keys, requests need `Authorization: Bearer <key>`.
    #[arg(long, env = "PICE_GATEWAY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// API keys, comma-separated (prefer the environment variable to the flag).
    #[arg(long, env = "PICE_GATEWAY_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "PICE_GATEWAY_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Token budget of progressive answers to requests that set no max_tokens (a cloud-only
    /// request without one gets the cloud server's default).
    #[arg(long, env = "PICE_GATEWAY_DEFAULT_MAX_TOKENS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub default_max_tokens: u32,
    /// Largest budget of an answer the gateway writes (progressive): a larger max_tokens is
    /// lowered to it. Cloud-only requests reach the cloud as sent, under the cloud's own limits.
    #[arg(long, env = "PICE_GATEWAY_MAX_TOKENS_CAP", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens_cap: u32,
    /// Turn ready once the cloud answers, without waiting for an edge replica: for pools whose
    /// edge pools may scale to zero, where requests this gateway answers from the cloud are what
    /// wakes them (the operator sets it then).
    #[arg(long, env = "PICE_GATEWAY_READY_WITHOUT_EDGE")]
    pub ready_without_edge: bool,
    /// How often every edge agent is asked for its load, in milliseconds.
    #[arg(long, env = "PICE_GATEWAY_LOAD_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub load_interval_ms: u64,
    /// CA (PEM) of the edge agents' certificates: turns on TLS towards them.
    #[arg(long, env = "PICE_GATEWAY_EDGE_TLS_CA")]
    pub edge_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS with the edge agents.
    #[arg(long, env = "PICE_GATEWAY_EDGE_TLS_CERT", requires_all = ["edge_tls_key", "edge_tls_ca"])]
    pub edge_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --edge-tls-cert.
    #[arg(long, env = "PICE_GATEWAY_EDGE_TLS_KEY", requires = "edge_tls_cert")]
    pub edge_tls_key: Option<PathBuf>,
    /// Name expected in the edge agents' certificates.
    #[arg(long, env = "PICE_GATEWAY_EDGE_TLS_DOMAIN", requires = "edge_tls_ca")]
    pub edge_tls_domain: Option<String>,
    /// Router model (written by `pice-gateway router train`) that `auto` mode consults;
    /// the model built into this release when unset.
    #[arg(long, env = "PICE_GATEWAY_ROUTER_MODEL")]
    pub router_model: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ServeArgs {
    /// Reads the files the arguments name into the gateway's settings.
    pub fn settings(&self) -> Result<Settings, StartError> {
        let text = std::fs::read_to_string(&self.config)
            .map_err(|e| StartError::Config(format!("cannot read {}: {e}", self.config.display())))?;
        let config: GatewayConfig = serde_json::from_str(&text).map_err(|e| {
            StartError::Config(format!("{} is not a gateway configuration: {e}", self.config.display()))
        })?;
        let keys = ApiKeys::load(self.api_keys_file.as_deref(), self.api_keys.as_deref())
            .map_err(StartError::Config)?;
        let discovery = if self.edge_endpoints.is_empty() {
            Discovery::Kubernetes { namespace: self.namespace.clone() }
        } else {
            Discovery::Static(self.edge_endpoints.clone())
        };
        let edge_tls = self
            .edge_tls()
            .map(|files| files.client_config())
            .transpose()
            .map_err(|e| StartError::Config(e.to_string()))?;
        Ok(Settings {
            config,
            listen: self.listen,
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                default_max_tokens: self.default_max_tokens,
                max_tokens_cap: self.max_tokens_cap,
            },
            keys,
            discovery,
            edge_tls,
            load_interval: Duration::from_millis(self.load_interval_ms),
            ready_without_edge: self.ready_without_edge,
            router: self.router()?,
        })
    }

    fn router(&self) -> Result<Router, StartError> {
        match &self.router_model {
            Some(path) => Router::load(path).map_err(|e| StartError::Config(e.to_string())),
            None => Ok(Router::builtin().clone()),
        }
    }

    fn edge_tls(&self) -> Option<ClientTlsFiles> {
        Some(ClientTlsFiles {
            ca: self.edge_tls_ca.clone()?,
            identity: self.edge_tls_cert.clone().zip(self.edge_tls_key.clone()),
            domain: self.edge_tls_domain.clone(),
        })
    }
}

/// Runs the command line.
pub async fn main(args: Args) -> Result<(), StartError> {
    match args.command {
        Some(Command::Router { command }) => router_command(command),
        None => serve(args.serve).await,
    }
}

fn router_command(command: RouterCommand) -> Result<(), StartError> {
    let read = |files: &[PathBuf]| -> Result<Vec<(String, Vec<router::data::Labelled>)>, StartError> {
        files
            .iter()
            .map(|file| {
                Ok((file.display().to_string(), router::data::read(file).map_err(StartError::Config)?))
            })
            .collect()
    };
    match command {
        RouterCommand::Train { out, regularization, files } => {
            let sets = read(&files)?;
            let trained_on = sets
                .iter()
                .map(|(file, questions)| router::model::TrainingSet {
                    file: file.rsplit('/').next().unwrap_or(file).to_owned(),
                    questions: questions.len(),
                    suitable: questions.iter().filter(|q| q.suitable).count(),
                })
                .collect();
            let questions: Vec<_> = sets.into_iter().flat_map(|(_, questions)| questions).collect();
            let settings = router::train::Settings { regularization, ..router::train::Settings::default() };
            let model = router::train::train(&questions, settings, trained_on);
            let text = serde_json::to_string_pretty(&model).map_err(|e| StartError::Config(e.to_string()))?;
            std::fs::write(&out, text + "\n")
                .map_err(|e| StartError::Config(format!("cannot write {}: {e}", out.display())))?;
            println!(
                "wrote {} ({} weights, trained on {} questions)",
                out.display(),
                model.weights.len(),
                questions.len()
            );
            Ok(())
        }
        RouterCommand::Eval { folds, repeats, regularization, holdout, model, files } => {
            let sets = read(&files)?;
            let holdout = holdout
                .map(|path| {
                    files.iter().position(|file| *file == path).ok_or_else(|| {
                        StartError::Config(format!("--holdout {} is not one of the files", path.display()))
                    })
                })
                .transpose()?;
            let router = match model {
                Some(path) => Router::load(&path).map_err(|e| StartError::Config(e.to_string()))?,
                None => Router::builtin().clone(),
            };
            let plan = router::eval::Plan {
                sets,
                folds: folds as usize,
                repeats: repeats as usize,
                regularizations: regularization,
                holdout,
            };
            print!("{}", router::eval::report(&plan, &router));
            Ok(())
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains.
async fn serve(args: ServeArgs) -> Result<(), StartError> {
    args.log.init();
    let settings = args.settings()?;
    let (pool, mode) = (settings.config.pool.clone(), settings.config.routing.mode);
    let keys = settings.keys.enabled();
    let gateway = server::bind(settings, Registry::new()).await?;
    let addr = gateway.local_addr()?;
    announce(addr)?;
    info!(%addr, %pool, mode = mode.as_str(), api_keys = keys, "gateway serving");
    gateway.serve(pice_wire::shutdown::signal()).await
}

/// The first stdout line, which scripts and tests read to find the port (as `pice-sim` does).
fn announce(addr: SocketAddr) -> Result<(), StartError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).map_err(StartError::Serve)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn the_operators_arguments_parse_and_select_kubernetes_discovery() {
        let args = Args::try_parse_from([
            "pice-gateway",
            "--config=/etc/pice/gateway.json",
            "--listen=0.0.0.0:8080",
            "--namespace=llm",
        ])
        .unwrap();
        assert!(args.command.is_none());
        assert_eq!(args.serve.namespace, "llm");
        assert!(args.serve.edge_endpoints.is_empty());
        assert_eq!(args.serve.edge_tls(), None);
    }

    #[test]
    fn edge_endpoints_are_a_comma_separated_list_and_the_router_commands_take_files() {
        let args =
            Args::try_parse_from(["pice-gateway", "--edge-endpoints", "127.0.0.1:1,127.0.0.1:2"]).unwrap();
        assert_eq!(args.serve.edge_endpoints, ["127.0.0.1:1", "127.0.0.1:2"]);
        let args = Args::try_parse_from(["pice-gateway", "router", "eval", "a.csv", "b.csv"]).unwrap();
        let Some(Command::Router { command: RouterCommand::Eval { files, folds, .. } }) = args.command else {
            panic!("expected router eval")
        };
        assert_eq!((files.len(), folds), (2, 10));
        let args =
            Args::try_parse_from(["pice-gateway", "router", "train", "--out", "m.json", "a.csv"]).unwrap();
        assert!(matches!(args.command, Some(Command::Router { command: RouterCommand::Train { .. } })));
        assert!(Args::try_parse_from(["pice-gateway", "--edge-tls-cert", "c.pem"]).is_err());
    }
}
