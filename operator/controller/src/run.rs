//! `pice-operator`: command line and the wiring of client, leader election, controller and probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::Client;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use crate::autoscale::QueueMeasurer;
use crate::children::Images;
use crate::controller::{self, Settings};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use pice_wire::probes::{self, Readiness};
use pice_wire::telemetry::LogArgs;

/// The PICE operator: reconciles `InferencePool` resources (pice.dev/v1alpha1).
#[derive(Parser, Debug)]
#[command(name = "pice-operator", version)]
pub struct Args {
    /// What to do (default: run the operator).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of the operator.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (the default).
    Run,
    /// Print the InferencePool CustomResourceDefinition as YAML.
    Crd,
}

/// Settings of a running operator.
#[derive(clap::Args, Debug)]
pub struct OperatorArgs {
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoints.
    #[arg(long, env = "PICE_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,
    /// Watch pools only in this namespace (default: all namespaces).
    #[arg(long, env = "PICE_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "PICE_LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "PICE_LEASE_NAME", default_value = "pice-operator")]
    pub lease_name: String,
    /// Identity of this replica in the Lease (default: host name and process id).
    #[arg(long, env = "PICE_IDENTITY")]
    pub identity: Option<String>,
    /// Image of the `pice-edge-agent` sidecar.
    #[arg(long, env = "PICE_EDGE_AGENT_IMAGE", default_value = "ghcr.io/pice-dev/pice-edge-agent:0.1.0")]
    pub edge_agent_image: String,
    /// Image of `pice-edge-agent` built with llama.cpp (edge models of engine `llama`).
    #[arg(
        long,
        env = "PICE_EDGE_AGENT_LLAMA_IMAGE",
        default_value = "ghcr.io/pice-dev/pice-edge-agent-llama:0.1.0"
    )]
    pub edge_agent_llama_image: String,
    /// Image of `pice-gateway`.
    #[arg(long, env = "PICE_GATEWAY_IMAGE", default_value = "ghcr.io/pice-dev/pice-gateway:0.1.0")]
    pub gateway_image: String,
    /// Seconds between looks at a Ready pool when nothing changes.
    #[arg(long, env = "PICE_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,
    /// Seconds between looks at a pool that is not Ready yet.
    #[arg(long, env = "PICE_NOT_READY_REQUEUE_SECONDS", default_value_t = 10)]
    pub not_ready_requeue_seconds: u64,
    /// Seconds between measurements of edge queue depth (the autoscaler's sync period).
    #[arg(long, env = "PICE_SYNC_PERIOD_SECONDS", default_value_t = 5.0, value_parser = sync_period)]
    pub sync_period_seconds: f64,
    /// Relative change of the per-replica queue the autoscaler ignores (0.1 = 10 %).
    #[arg(long, env = "PICE_SCALE_TOLERANCE", default_value_t = 0.1, value_parser = tolerance)]
    pub scale_tolerance: f64,
    /// Pools reconciled at the same time.
    #[arg(long, env = "PICE_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Pools whose edge queues the autoscaler measures at the same time (each agent answers
    /// within 2 s or counts as silent).
    #[arg(long, env = "PICE_MEASURE_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub measure_concurrency: u16,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Runs the command.
pub async fn main(args: Args) -> anyhow::Result<()> {
    match args.command.unwrap_or(Command::Run) {
        Command::Crd => {
            print!("{}", pice_api::crd_yaml()?);
            Ok(())
        }
        Command::Run => run(args.operator).await,
    }
}

/// Runs the operator until SIGTERM or Ctrl-C; returns an error if it loses the lease.
pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    args.log.init();
    pice_wire::crypto::install_default_provider();
    let measurer = QueueMeasurer::new().context(
        "building the HTTP client that reads queue depth and wake-up counts (is there a CA bundle?)",
    )?;
    let registry = Registry::new();
    let metrics = Metrics::register(&registry)?;
    let ready = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    let listener =
        tokio::net::TcpListener::bind(args.metrics_listen).await.context("binding the metrics address")?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let check = ready.clone();
    let readiness =
        Readiness::new(move || check.load(Ordering::Relaxed), "the API server and the leader election");
    let app: axum::Router = probes::router(registry, readiness);
    let server = tokio::spawn(
        axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future(),
    );

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let client = client(&identity).await?;
    ensure_crd_installed(&client).await?;
    let mut leadership =
        Leadership::join(client.clone(), &args.lease_namespace, &args.lease_name, &identity).await?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%identity, lease = %args.lease_name, "waiting for leadership");
    let mut lost = false;
    if leadership.acquired(&stop).await {
        metrics.leader.set(1);
        tracing::info!(%identity, "leading; starting controller");
        let controller_stop = CancellationToken::new();
        let controller = tokio::spawn(controller::run(
            client,
            metrics.clone(),
            settings(&args),
            measurer.clone(),
            identity.clone(),
            controller_stop.clone().cancelled_owned(),
        ));
        tokio::select! {
            () = stop.cancelled() => {}
            () = leadership.lost() => lost = true,
        }
        controller_stop.cancel();
        // The controller waits for in-flight reconciles; give up on it after a grace period.
        let mut controller = controller;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut controller).await.is_err() {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "controller did not stop in time; aborting it");
            controller.abort();
        }
        metrics.leader.set(0);
    }
    leadership.release().await;
    stop.cancel();
    server.await??;
    anyhow::ensure!(!lost, "lost the leader lease; exiting so a fresh process can compete again");
    tracing::info!("stopped");
    Ok(())
}

/// A client for the API server from the in-cluster config or `KUBECONFIG`, whose requests name
/// the operator and this replica in their `User-Agent` (`pice-operator/0.1.0 (IDENTITY)`), so
/// audit logs and API priority see who asks.
async fn client(identity: &str) -> anyhow::Result<Client> {
    let mut config =
        kube::Config::infer().await.context("finding the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let agent = format!("pice-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
    let agent = http::HeaderValue::from_str(&agent)
        .with_context(|| format!("identity {identity:?} cannot be sent in a User-Agent header"))?;
    config.headers.push((http::header::USER_AGENT, agent));
    Client::try_from(config).context("connecting to the Kubernetes API")
}

/// How long in-flight reconciles may run on after a stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Fails with the way out when the API server does not serve `InferencePool`.
async fn ensure_crd_installed(client: &Client) -> anyhow::Result<()> {
    let pools: kube::Api<pice_api::InferencePool> = kube::Api::all(client.clone());
    match pools.list_metadata(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => anyhow::bail!(
            "the InferencePool CRD (inferencepools.pice.dev) is not installed: run `kubectl apply -f crds/` or install the Helm chart"
        ),
        Err(error) => Err(error).context("checking that the InferencePool CRD is installed"),
    }
}

fn settings(args: &OperatorArgs) -> Settings {
    Settings {
        images: Images {
            edge_agent: args.edge_agent_image.clone(),
            edge_agent_llama: args.edge_agent_llama_image.clone(),
            gateway: args.gateway_image.clone(),
        },
        resync: Duration::from_secs(args.resync_seconds),
        not_ready_requeue: Duration::from_secs(args.not_ready_requeue_seconds),
        namespace: args.namespace.clone(),
        sync_period: Duration::from_secs_f64(args.sync_period_seconds),
        tolerance: args.scale_tolerance,
        concurrency: args.concurrency,
        measure_concurrency: usize::from(args.measure_concurrency),
    }
}

/// `--sync-period-seconds`: at least 0.1 s, so the autoscaler cannot hammer the agents.
fn sync_period(value: &str) -> Result<f64, String> {
    let seconds: f64 = value.parse().map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if seconds.is_finite() && seconds >= 0.1 {
        Ok(seconds)
    } else {
        Err(format!("{value} s is too short: the sync period must be at least 0.1 s"))
    }
}

/// `--scale-tolerance`: a fraction in [0, 1).
fn tolerance(value: &str) -> Result<f64, String> {
    let fraction: f64 = value.parse().map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..1.0).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(format!("{value} is not a fraction in [0, 1) (0.1 = 10 %)"))
    }
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "pice-operator".into());
    format!("{host}-{}", std::process::id())
}

async fn stop_on_signal(stop: CancellationToken) {
    pice_wire::shutdown::signal().await;
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn a_sync_period_under_a_tenth_of_a_second_or_a_tolerance_outside_0_to_1_is_refused() {
        assert_eq!(sync_period("0.5"), Ok(0.5));
        assert!(sync_period("0.01").is_err_and(|e| e.contains("at least 0.1 s")));
        assert!(sync_period("NaN").is_err());
        assert!(sync_period("soon").is_err_and(|e| e.contains("not a number")));
        assert_eq!(tolerance("0"), Ok(0.0));
        assert!(tolerance("1").is_err_and(|e| e.contains("[0, 1)")));
        assert!(tolerance("-0.2").is_err());
    }
}
