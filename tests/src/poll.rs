//! Polling: e2e tests wait for the cluster to converge instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` every 250 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
