//! Errors of the operator, each with a short label for metrics and event reasons.

/// What can go wrong while reconciling a pool. All of these are transient (API or network):
/// an invalid spec is not an error but a condition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server-side apply of a child failed.
    #[error("failed to apply {kind} {name}: {source}")]
    Apply { kind: String, name: String, source: kube::Error },
    /// Deleting a child the spec no longer asks for failed.
    #[error("failed to delete stale {kind} {name}: {source}")]
    Prune { kind: String, name: String, source: kube::Error },
    /// The caches stopped before they were filled (the controller is stopping).
    #[error(transparent)]
    Cache(#[from] crate::controller::cache::CacheStopped),
    /// Writing the pool's status failed.
    #[error("failed to update status of InferencePool {name}: {source}")]
    Status { name: String, source: kube::Error },
    /// An object could not be serialised for the API.
    #[error("failed to serialise {what}: {source}")]
    Serialize { what: String, source: serde_json::Error },
}

impl Error {
    /// A short, fixed label for the metric `pice_operator_reconcile_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "apply",
            Self::Prune { .. } => "prune",
            Self::Cache(_) => "cache",
            Self::Status { .. } => "status",
            Self::Serialize { .. } => "serialize",
        }
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;
