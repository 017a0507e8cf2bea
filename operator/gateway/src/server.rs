//! Wiring of a running gateway: the router, the background tasks (edge discovery, load polling,
//! the cloud probe) and serving until shutdown, draining in-flight streams.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::ClientTlsConfig;
use tracing::{info, warn};

use super::auth::{self, ApiKeys, Guard};
use super::cloud::CloudClient;
use super::discovery;
use super::handlers::{self, AppState};
use super::metrics::GatewayMetrics;
use super::replicas::Replicas;
use super::state::{Gateway, Limits};
use pice_api::gateway_config::GatewayConfig;
use pice_wire::probes::{self, Readiness};

/// Where the edge agents are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// A fixed list of `host:port` (outside a cluster).
    Static(Vec<String>),
    /// The EndpointSlices of the configuration's edge Services in this namespace.
    Kubernetes { namespace: String },
}

/// How to run a gateway.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: GatewayConfig,
    pub listen: SocketAddr,
    pub limits: Limits,
    pub keys: ApiKeys,
    pub discovery: Discovery,
    /// TLS (optionally mutual) towards the edge agents.
    pub edge_tls: Option<ClientTlsConfig>,
    /// How often every edge agent is asked for its load.
    pub load_interval: Duration,
    /// Turn ready without any edge replica (edge pools that may scale to zero).
    pub ready_without_edge: bool,
    /// The router `auto` mode consults.
    pub router: crate::router::Router,
}

/// Why a gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot reach the Kubernetes API for edge discovery: {0}")]
    Kube(#[from] kube::Error),
}

/// A gateway with its port bound and its background tasks running.
pub struct BoundGateway {
    listener: TcpListener,
    router: Router,
    gateway: Arc<Gateway>,
    tasks: JoinSet<()>,
}

/// The gateway's routes. API routes need a key when keys are configured; all of them stay
/// within the body limit.
pub fn router(gateway: Arc<Gateway>, keys: ApiKeys, registry: Registry) -> Router {
    let guard = Guard { keys, metrics: gateway.metrics.clone() };
    let limit = gateway.limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/chat/completions", post(handlers::chat))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/models", get(handlers::models))
        .route_layer(middleware::from_fn_with_state(guard, auth::require_key));
    let ready = {
        let gateway = Arc::clone(&gateway);
        Readiness::new(move || gateway.ready(), "the cloud LLM and an edge agent")
    };
    Router::new()
        .merge(api)
        .merge(probes::router(registry, ready))
        .fallback(handlers::unknown)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(AppState { gateway })
}

/// Binds the port, registers metrics in `registry` and starts discovery, load polling and the
/// cloud probe.
pub async fn bind(settings: Settings, registry: Registry) -> Result<BoundGateway, StartError> {
    pice_wire::crypto::install_default_provider();
    let metrics = GatewayMetrics::register(&registry, &settings.config.pool)?;
    let cloud = CloudClient::new(&settings.config.cloud).map_err(|e| StartError::Config(e.to_string()))?;
    let replicas = Arc::new(Replicas::new(settings.edge_tls.clone(), metrics.edge_endpoints.clone()));
    let mut tasks = JoinSet::new();
    start_discovery(&settings, &replicas, &mut tasks).await?;
    tasks.spawn(Arc::clone(&replicas).poll_forever(settings.load_interval));
    let gateway = Gateway::new(settings.config, settings.limits, cloud, replicas, metrics);
    let gateway =
        Arc::new(gateway.ready_without_edge(settings.ready_without_edge).with_router(settings.router));
    tasks.spawn(probe_cloud(Arc::clone(&gateway)));
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind { addr: settings.listen, source })?;
    let router = router(Arc::clone(&gateway), settings.keys, registry);
    Ok(BoundGateway { listener, router, gateway, tasks })
}

async fn start_discovery(
    settings: &Settings,
    replicas: &Arc<Replicas>,
    tasks: &mut JoinSet<()>,
) -> Result<(), StartError> {
    match &settings.discovery {
        Discovery::Static(list) => {
            replicas.set(&discovery::static_endpoints(list).map_err(StartError::Config)?);
            replicas.poll_once().await;
        }
        Discovery::Kubernetes { namespace } => {
            let client = kube::Client::try_default().await?;
            let targets = settings.config.edge.clone();
            tasks.spawn(discovery::watch_endpoint_slices(
                client,
                namespace.clone(),
                targets,
                Arc::clone(replicas),
            ));
        }
    }
    Ok(())
}

/// Probes the cloud until it answers once (readiness needs it).
async fn probe_cloud(gateway: Arc<Gateway>) {
    let mut delay = Duration::from_millis(100);
    while !gateway.cloud.ready().await {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    gateway.cloud_answered();
    info!(model = gateway.cloud.model(), "the cloud LLM answers");
}

impl BoundGateway {
    pub fn local_addr(&self) -> Result<SocketAddr, StartError> {
        self.listener.local_addr().map_err(StartError::Serve)
    }

    /// Serves until `shutdown` resolves; then readiness turns false, no new connections are
    /// taken and in-flight requests (streams included) finish before this returns.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let gateway = Arc::clone(&self.gateway);
        let draining = async move {
            shutdown.await;
            gateway.start_draining();
            info!("draining in-flight requests");
        };
        // Streamed chunks are small and often written back to back (a buffered point flushed at
        // once): without TCP_NODELAY, Nagle's algorithm holds them for the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            let _unsupported = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, self.router).with_graceful_shutdown(draining).await;
        self.tasks.shutdown().await;
        if let Err(error) = &served {
            warn!(%error, "the HTTP server failed");
        }
        served.map_err(StartError::Serve)
    }
}
