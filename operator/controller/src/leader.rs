//! Leader election through a `coordination.k8s.io` Lease, so two replicas never both write.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Lease timings in seconds: a lease lasts 15 s and is renewed 5 s before it expires.
const LEASE_SECONDS: u64 = 15;
const RENEW_BEFORE_SECONDS: u64 = 5;

/// This process's claim on the lease.
pub struct Leadership {
    is_leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// Starts competing for lease `name` in `namespace` as `identity`.
    pub async fn join(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(RENEW_BEFORE_SECONDS)
            .with_field_manager(crate::children::names::FIELD_MANAGER)
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Waits until this process leads; `false` if `stop` came first.
    pub async fn acquired(&mut self, stop: &CancellationToken) -> bool {
        tokio::select! {
            result = self.is_leader.wait_for(|leads| *leads) => result.is_ok(),
            () = stop.cancelled() => false,
        }
    }

    /// Resolves when this process stops leading (lease lost or lease task gone).
    pub async fn lost(&mut self) {
        let _ = self.is_leader.wait_for(|leads| !*leads).await;
    }

    /// Gives the lease up so a standby takes over at once.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released leader lease"),
            Ok(Err(error)) => tracing::warn!(%error, "failed to release leader lease"),
            Err(error) => tracing::warn!(%error, "lease task failed"),
        }
    }
}
