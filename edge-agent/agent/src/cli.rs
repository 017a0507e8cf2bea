//! `pice-edge-agent`'s command line and its `run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand, ValueEnum};
use prometheus::Registry;
use tracing::info;

use super::server::{AgentSettings, bind};
use super::service::Defaults;
use crate::Error;
use crate::fetch::{self, Fetched};
#[cfg(feature = "llama")]
use crate::llama::{LlamaBackend, LlamaSettings};
use pice_sim::backend::SimBackend;
use pice_sim::profiles;
use pice_wire::generation::ModelBackend;
use pice_wire::openai_client::OpenAiBackend;
use pice_wire::shutdown;
use pice_wire::telemetry::LogArgs;
use pice_wire::tls::ServerTlsFiles;

/// Which model server the agent fronts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// An OpenAI-compatible server at --backend-url (vLLM, llama.cpp, Ollama, TGI, pice-sim).
    Openai,
    /// The in-process simulator (no model; answers are labelled simulated).
    Sim,
    /// llama.cpp in-process with the GGUF file at --model-path (a build with `--features llama`).
    Llama,
}

/// The PICE edge agent: expands sketch points with the local model over gRPC.
#[derive(Clone, Debug, Parser)]
#[command(name = "pice-edge-agent", version, about, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// A one-off job instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// gRPC address (EdgeAgent and grpc.health.v1.Health).
    #[arg(long, env = "PICE_EDGE_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Address of the HTTP server for /metrics and /healthz.
    #[arg(long, env = "PICE_EDGE_METRICS_LISTEN", default_value = "0.0.0.0:9464")]
    pub metrics_listen: SocketAddr,
    /// Model backend.
    #[arg(long, env = "PICE_EDGE_BACKEND", value_enum, default_value_t = BackendKind::Openai)]
    pub backend: BackendKind,
    /// API root of the OpenAI-compatible model server (openai backend).
    #[arg(long, env = "PICE_EDGE_BACKEND_URL", default_value = "http://127.0.0.1:8080/v1")]
    pub backend_url: String,
    /// Model name sent to the server and reported in Load and metrics; required with the
    /// openai backend, the profile's model by default with the sim backend.
    #[arg(long, env = "PICE_EDGE_MODEL")]
    pub model: Option<String>,
    /// Ask the openai backend's server to reuse the KV cache of the prompt prefix that the
    /// expansions of one sketch share (llama.cpp `llama-server`'s `cache_prompt: true` on every
    /// request; servers that do not know the field ignore it). Off by default.
    #[arg(long, env = "PICE_CACHE_PROMPT")]
    pub cache_prompt: bool,
    /// GGUF model file of the llama backend.
    #[arg(long, env = "PICE_MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// CPU threads of the llama backend's engine, which decodes all --slots sequences as one
    /// batch; all cores by default.
    #[arg(long, env = "PICE_EDGE_LLAMA_THREADS", value_parser = clap::value_parser!(u32).range(1..))]
    pub llama_threads: Option<u32>,
    /// KV cache cells of the llama backend, shared by its --slots sequences and reserved at
    /// start; one expansion's prompt and budget must fit. By default 1024 per slot.
    #[arg(long, env = "PICE_EDGE_LLAMA_CONTEXT_TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub llama_context_tokens: Option<u32>,
    /// Decode every llama expansion's whole prompt, even the prefix (system text, question,
    /// sketch) that another sequence already holds in the KV cache.
    #[arg(long, env = "PICE_EDGE_LLAMA_NO_PREFIX_SHARING")]
    pub llama_no_prefix_sharing: bool,
    /// Hardware profile of the sim backend.
    #[arg(long, env = "PICE_EDGE_SIM_PROFILE", default_value = profiles::DEFAULT_PROFILE,
          value_parser = PossibleValuesParser::new(profiles::NAMES))]
    pub sim_profile: String,
    /// Text seed of the sim backend.
    #[arg(long, env = "PICE_EDGE_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Expansions generated at once (match the model server's parallel sequences).
    #[arg(long, env = "PICE_EDGE_SLOTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: u32,
    /// Expansions that may wait for a slot; beyond, requests get RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "PICE_EDGE_QUEUE", default_value_t = 8)]
    pub queue: u32,
    /// Token budget of requests that set none.
    #[arg(long, env = "PICE_EDGE_DEFAULT_MAX_TOKENS", default_value_t = 160, value_parser = clap::value_parser!(u32).range(1..))]
    pub default_max_tokens: u32,
    /// Deadline of requests that set none, in milliseconds.
    #[arg(long, env = "PICE_EDGE_DEFAULT_DEADLINE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub default_deadline_ms: u64,
    /// How often to re-check that the model server answers, in milliseconds.
    #[arg(long, env = "PICE_EDGE_READINESS_INTERVAL_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub readiness_interval_ms: u64,
    /// Server certificate (PEM) for TLS on the gRPC port.
    #[arg(long, env = "PICE_EDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "PICE_EDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must be signed by: turns on mutual TLS.
    #[arg(long, env = "PICE_EDGE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Args {
    pub fn settings(&self) -> AgentSettings {
        let tls = self.tls_cert.clone().zip(self.tls_key.clone()).map(|(cert, key)| ServerTlsFiles {
            cert,
            key,
            client_ca: self.tls_client_ca.clone(),
        });
        AgentSettings {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            slots: self.slots as usize,
            queue: self.queue as usize,
            defaults: Defaults {
                max_tokens: self.default_max_tokens,
                deadline: Duration::from_millis(self.default_deadline_ms),
            },
            tls,
            readiness_interval: Duration::from_millis(self.readiness_interval_ms),
        }
    }

    /// Builds the backend; the sim backend starts its engine on the current runtime and
    /// registers its counters in `registry`.
    pub fn backend(&self, registry: &Registry) -> Result<Arc<dyn ModelBackend>, Error> {
        match self.backend {
            BackendKind::Openai => {
                let model = self.model.clone().ok_or_else(|| {
                    Error::Config("--model (PICE_EDGE_MODEL) is required with --backend openai".to_owned())
                })?;
                let backend = OpenAiBackend::new(&self.backend_url, model)?;
                Ok(Arc::new(backend.with_prompt_cache(self.cache_prompt)))
            }
            BackendKind::Sim => {
                let profile = profiles::named(&self.sim_profile)
                    .ok_or_else(|| Error::Config(format!("unknown profile {:?}", self.sim_profile)))?;
                let backend = SimBackend::start(profile, self.seed, self.model.clone());
                backend
                    .register_metrics(registry)
                    .map_err(|e| Error::Config(format!("simulator metrics: {e}")))?;
                Ok(Arc::new(backend))
            }
            BackendKind::Llama => self.llama_backend(registry),
        }
    }

    /// Loads the GGUF model (blocks while llama.cpp reads it) and registers its counter in
    /// `registry`.
    #[cfg(feature = "llama")]
    fn llama_backend(&self, registry: &Registry) -> Result<Arc<dyn ModelBackend>, Error> {
        let model_path = self.model_path.clone().ok_or_else(|| {
            Error::Config("--model-path (PICE_MODEL_PATH) is required with --backend llama".to_owned())
        })?;
        let settings = LlamaSettings {
            model_path,
            model_name: self.model.clone(),
            threads: self.llama_threads,
            slots: self.slots,
            context_tokens: self
                .llama_context_tokens
                .unwrap_or(self.slots.saturating_mul(LLAMA_CONTEXT_TOKENS_PER_SLOT)),
            share_prefix: !self.llama_no_prefix_sharing,
        };
        let backend = LlamaBackend::load(&settings)?;
        backend
            .register_metrics(registry)
            .map_err(|e| Error::Config(format!("llama backend metrics: {e}")))?;
        Ok(Arc::new(backend))
    }

    #[cfg(not(feature = "llama"))]
    fn llama_backend(&self, _registry: &Registry) -> Result<Arc<dyn ModelBackend>, Error> {
        Err(Error::Config(
            "this pice-edge-agent was built without the llama backend; build it with \
             `cargo build -p pice-edge-agent --features llama`"
                .to_owned(),
        ))
    }
}

/// The llama backend's KV cache cells per slot unless --llama-context-tokens says otherwise: an
/// expansion prompt (a few hundred tokens) and its budget, with room for prefix donors.
#[cfg(feature = "llama")]
const LLAMA_CONTEXT_TOKENS_PER_SLOT: u32 = 1024;

/// The agent's one-off jobs.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Download a model's weights file into the node-local cache and check its sha256 (the init
    /// container the operator adds for an edge model's `weights.url`).
    FetchWeights(FetchArgs),
}

/// `pice-edge-agent fetch-weights`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct FetchArgs {
    /// HTTP(S) URL of the weights file.
    #[arg(long, env = "PICE_WEIGHTS_URL")]
    pub url: String,
    /// Its sha256, 64 hex digits.
    #[arg(long, env = "PICE_WEIGHTS_SHA256")]
    pub sha256: String,
    /// Where the file goes (kept there when it already has that checksum).
    #[arg(long, env = "PICE_WEIGHTS_DEST")]
    pub dest: PathBuf,
}

/// Fetches the weights; the error is the container's last log line, which the operator reports.
async fn fetch_weights(args: &FetchArgs) -> Result<(), Error> {
    pice_wire::crypto::install_default_provider();
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client (is there a CA bundle?): {e}")))?;
    match fetch::fetch(&client, &args.url, &args.sha256, &args.dest).await? {
        Fetched::Cached => info!(dest = %args.dest.display(), "weights already in the node's cache"),
        Fetched::Downloaded(bytes) => {
            info!(dest = %args.dest.display(), bytes, "weights downloaded and checked")
        }
    }
    Ok(())
}

/// Runs the agent until SIGTERM or Ctrl-C (or the one-off job, when one is given).
pub async fn run(args: Args) -> Result<(), Error> {
    args.log.init();
    if let Some(Command::FetchWeights(fetch)) = &args.command {
        return fetch_weights(fetch).await;
    }
    let registry = Registry::new();
    let backend = args.backend(&registry)?;
    let model = backend.model().to_owned();
    let agent = bind(args.settings(), backend, registry).await?;
    info!(
        grpc = %agent.grpc_addr()?,
        metrics = %agent.metrics_addr()?,
        %model,
        backend = ?args.backend,
        slots = args.slots,
        queue = args.queue,
        tls = args.tls_cert.is_some(),
        mtls = args.tls_client_ca.is_some(),
        "edge agent serving"
    );
    agent.serve(shutdown::signal()).await
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
    fn defaults_describe_a_sidecar_in_front_of_an_openai_server() {
        let args = Args::try_parse_from(["pice-edge-agent", "--model", "qwen"]).unwrap();
        let settings = args.settings();
        assert_eq!((settings.slots, settings.queue, settings.tls), (4, 8, None));
        assert_eq!(settings.defaults.deadline, Duration::from_secs(30));
        assert_eq!(args.backend, BackendKind::Openai);
        assert!(!args.cache_prompt);
    }

    #[test]
    fn the_openai_backend_needs_a_model_name() {
        let args = Args::try_parse_from(["pice-edge-agent"]).unwrap();
        let error = args.backend(&Registry::new()).err().unwrap();
        assert!(error.to_string().contains("--model"));
    }

    #[test]
    fn a_client_ca_without_a_server_certificate_is_refused() {
        assert!(Args::try_parse_from(["pice-edge-agent", "--tls-client-ca", "ca.pem"]).is_err());
        assert!(Args::try_parse_from(["pice-edge-agent", "--tls-cert", "c.pem"]).is_err());
        let args = Args::try_parse_from([
            "pice-edge-agent",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(args.settings().tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
    }

    #[cfg(not(feature = "llama"))]
    #[test]
    fn the_llama_backend_in_a_build_without_it_says_how_to_build_it() {
        let args = Args::try_parse_from(["pice-edge-agent", "--backend", "llama"]).unwrap();
        let error = args.backend(&Registry::new()).err().unwrap();
        assert!(error.to_string().contains("--features llama"), "{error}");
    }

    #[cfg(feature = "llama")]
    #[test]
    fn the_llama_backend_needs_a_model_file_that_exists() {
        // PICE_MODEL_PATH may be set (`make llama` sets it), so clear what it filled in.
        let mut args = Args::try_parse_from(["pice-edge-agent", "--backend", "llama"]).unwrap();
        args.model_path = None;
        assert!(args.backend(&Registry::new()).err().unwrap().to_string().contains("--model-path"));
        let args = Args::try_parse_from([
            "pice-edge-agent",
            "--backend",
            "llama",
            "--model-path",
            "/nonexistent.gguf",
        ])
        .unwrap();
        let error = args.backend(&Registry::new()).err().unwrap();
        assert!(error.to_string().contains("/nonexistent.gguf does not exist"), "{error}");
    }

    #[test]
    fn llama_prefix_sharing_is_on_unless_turned_off() {
        let args = Args::try_parse_from(["pice-edge-agent", "--backend", "llama"]).unwrap();
        assert!(!args.llama_no_prefix_sharing && args.llama_context_tokens.is_none());
        let args = Args::try_parse_from([
            "pice-edge-agent",
            "--llama-no-prefix-sharing",
            "--llama-context-tokens",
            "4096",
        ])
        .unwrap();
        assert!(args.llama_no_prefix_sharing);
        assert_eq!(args.llama_context_tokens, Some(4096));
    }

    #[test]
    fn zero_slots_are_refused() {
        assert!(Args::try_parse_from(["pice-edge-agent", "--slots", "0"]).is_err());
    }
}
