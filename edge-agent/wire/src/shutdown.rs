//! The shutdown signal: SIGTERM (how Kubernetes stops a pod), Ctrl-C, or, for a child of
//! `pice local` or `pice bench`, the death of its parent.

use std::time::Duration;

use tracing::{info, warn};

/// Set by `pice local` and `pice bench` to their own process id in the environment of the
/// processes they start: such a child stops when that parent is gone, even when the parent was
/// killed with SIGKILL and so had no chance to stop it.
pub const STOP_WITH_PARENT_ENV: &str = "PICE_STOP_WITH_PARENT";

/// How often a child checks that its parent still lives.
const PARENT_CHECK: Duration = Duration::from_millis(250);

/// Resolves when the process is asked to stop.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received, shutting down"),
        () = terminate => info!("SIGTERM received, shutting down"),
        () = parent_gone() => info!("the parent process is gone, shutting down"),
    }
}

/// Resolves when the parent named by [`STOP_WITH_PARENT_ENV`] is no longer this process's
/// parent; never when the variable is unset or names another process (inherited from further
/// up, so not ours to watch).
async fn parent_gone() {
    let named = std::env::var(STOP_WITH_PARENT_ENV).ok().and_then(|pid| pid.parse::<u32>().ok());
    if named != Some(std::os::unix::process::parent_id()) {
        return std::future::pending().await;
    }
    while Some(std::os::unix::process::parent_id()) == named {
        tokio::time::sleep(PARENT_CHECK).await;
    }
}
