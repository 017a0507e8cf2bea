//! Backend readiness: polls the model server and reflects it in the standard gRPC health
//! service and in `Load.ready`, so a gateway or kubelet stops sending work to an agent whose
//! model is loading or down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use pice_wire::generation::ModelBackend;

/// The health-service name of the edge agent's gRPC service.
pub const SERVICE_NAME: &str = "pice.edge.v1.EdgeAgent";

/// Keeps the health statuses ("" and [`SERVICE_NAME`]) and the ready flag in step with the
/// backend.
#[derive(Clone)]
pub struct Readiness {
    backend: Arc<dyn ModelBackend>,
    reporter: HealthReporter,
    ready: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(backend: Arc<dyn ModelBackend>, reporter: HealthReporter) -> Self {
        Self { backend, reporter, ready: Arc::new(AtomicBool::new(false)) }
    }

    /// The flag `Load` reports.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// Asks the backend once and publishes the answer.
    pub async fn check(&self) -> bool {
        let ready = self.backend.ready().await;
        let was = self.ready.swap(ready, Ordering::AcqRel);
        match (was, ready) {
            (false, true) => info!(model = self.backend.model(), "backend ready, serving"),
            (true, false) => warn!(model = self.backend.model(), "backend not answering, not serving"),
            _ => {}
        }
        self.publish(ready).await;
        ready
    }

    /// Re-checks every `interval`, forever (the caller aborts the task).
    pub async fn watch(self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.check().await;
        }
    }

    /// Marks the agent as not serving (on shutdown, so callers move away while it drains).
    pub async fn withdraw(&self) {
        self.ready.store(false, Ordering::Release);
        self.publish(false).await;
    }

    async fn publish(&self, ready: bool) {
        let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
        self.reporter.set_service_status("", status).await;
        self.reporter.set_service_status(SERVICE_NAME, status).await;
    }
}
