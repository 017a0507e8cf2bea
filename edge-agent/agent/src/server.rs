//! Wiring of a running agent: binds the gRPC and metrics ports, then serves the EdgeAgent and
//! health services and `/healthz`, `/readyz` (the model server answers) and `/metrics` until
//! shutdown, draining in-flight expansions.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use pice_wire::probes;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tracing::info;

use super::admission::Admission;
use super::expansion::ExpansionContext;
use super::metrics::AgentMetrics;
use super::rate::TokenRate;
use super::readiness::Readiness;
use super::service::{Defaults, EdgeAgentService};
use crate::Error;
use pice_wire::generation::ModelBackend;
use pice_wire::proto::edge_agent_server::EdgeAgentServer;
use pice_wire::tls::ServerTlsFiles;

/// How to run an agent.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// Expansions generated at once.
    pub slots: usize,
    /// Expansions that may wait for a slot.
    pub queue: usize,
    pub defaults: Defaults,
    pub tls: Option<ServerTlsFiles>,
    /// How often the backend's readiness is re-checked.
    pub readiness_interval: Duration,
}

/// An agent whose ports are bound; [`BoundAgent::serve`] runs it.
pub struct BoundAgent {
    grpc: TcpListener,
    metrics: TcpListener,
    service: EdgeAgentService,
    readiness: Readiness,
    health: HealthServer<HealthService>,
    tls: Option<ServerTlsConfig>,
    registry: Registry,
    readiness_interval: Duration,
}

/// Binds both ports and builds the services; metrics go to `registry`. Readiness is checked
/// once before returning, so health is right from the first request.
pub async fn bind(
    settings: AgentSettings,
    backend: Arc<dyn ModelBackend>,
    registry: Registry,
) -> Result<BoundAgent, Error> {
    let tls = settings.tls.as_ref().map(ServerTlsFiles::server_config).transpose()?;
    let metrics = AgentMetrics::register(&registry, backend.model())?;
    let admission = Arc::new(Admission::new(
        settings.slots,
        settings.queue,
        metrics.queue_depth.clone(),
        metrics.running.clone(),
    ));
    let reporter = HealthReporter::new();
    let readiness = Readiness::new(Arc::clone(&backend), reporter.clone());
    readiness.check().await;
    let context = Arc::new(ExpansionContext { backend, metrics, rate: Arc::new(TokenRate::default()) });
    let service = EdgeAgentService::new(context, admission, readiness.flag(), settings.defaults);
    Ok(BoundAgent {
        grpc: listen(settings.listen).await?,
        metrics: listen(settings.metrics_listen).await?,
        service,
        readiness,
        health: HealthServer::new(HealthService::from_health_reporter(reporter)),
        tls,
        registry,
        readiness_interval: settings.readiness_interval,
    })
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })
}

impl BoundAgent {
    pub fn grpc_addr(&self) -> Result<SocketAddr, Error> {
        self.grpc.local_addr().map_err(Error::Http)
    }

    pub fn metrics_addr(&self) -> Result<SocketAddr, Error> {
        self.metrics.local_addr().map_err(Error::Http)
    }

    /// Serves until `shutdown` resolves; then reports NOT_SERVING, stops taking connections
    /// and waits for in-flight expansions (each bounded by its deadline).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let stop = CancellationToken::new();
        let flag = self.readiness.flag();
        let ready = probes::Readiness::new(move || flag.load(Ordering::Acquire), "the model server");
        let probe_router: Router = probes::router(self.registry, ready);
        let metrics_server = axum::serve(self.metrics, probe_router)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
        let metrics_task = tokio::spawn(metrics_server);
        let watcher = tokio::spawn(self.readiness.clone().watch(self.readiness_interval));
        let readiness = self.readiness.clone();
        let grpc_shutdown = async move {
            shutdown.await;
            info!("draining in-flight expansions");
            readiness.withdraw().await;
        };
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).map_err(Error::Tls)?;
        }
        let incoming = TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let served = builder
            .add_service(self.health)
            .add_service(EdgeAgentServer::new(self.service))
            .serve_with_incoming_shutdown(incoming, grpc_shutdown)
            .await
            .map_err(Error::Grpc);
        watcher.abort();
        stop.cancel();
        let metrics_served = metrics_task.await.map_err(|e| Error::Http(std::io::Error::other(e)))?;
        served?;
        metrics_served.map_err(Error::Http)
    }
}
