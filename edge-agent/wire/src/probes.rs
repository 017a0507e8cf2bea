//! The endpoints every PICE binary serves for Kubernetes probes and Prometheus: `/healthz`
//! (the process runs), `/readyz` (it can do its job) and `/metrics` (its registry in the text
//! format). One router, merged into each binary's own.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

/// What `/readyz` asks: whether the binary is ready, and what it waits for when it is not.
#[derive(Clone)]
pub struct Readiness {
    check: Arc<dyn Fn() -> bool + Send + Sync>,
    waiting_for: &'static str,
}

impl Readiness {
    /// Ready whenever `check` says so; the 503's body says `waiting for {waiting_for}`.
    pub fn new(check: impl Fn() -> bool + Send + Sync + 'static, waiting_for: &'static str) -> Self {
        Self { check: Arc::new(check), waiting_for }
    }

    /// Ready as soon as the process serves.
    pub fn always() -> Self {
        Self::new(|| true, "nothing")
    }

    fn respond(&self) -> Response {
        if (self.check)() {
            (StatusCode::OK, "ready").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, format!("waiting for {}", self.waiting_for)).into_response()
        }
    }
}

/// `/healthz`, `/readyz` and `/metrics` over `registry`.
pub fn router<S: Clone + Send + Sync + 'static>(registry: Registry, readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || std::future::ready(readiness.respond())))
        .route("/metrics", get(move || std::future::ready(render(&registry))))
}

/// The registry in Prometheus' text format.
fn render(registry: &Registry) -> Response {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn readiness_follows_its_check_and_names_what_it_waits_for() {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        let readiness = Readiness::new(move || seen.load(Ordering::Relaxed), "the API server");
        let waiting = readiness.respond();
        assert_eq!(waiting.status(), StatusCode::SERVICE_UNAVAILABLE);
        flag.store(true, Ordering::Relaxed);
        assert_eq!(readiness.respond().status(), StatusCode::OK);
    }

    #[test]
    fn metrics_render_the_registry_in_the_text_format() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("pice_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let response = render(&registry);
        assert_eq!(response.headers()[header::CONTENT_TYPE], prometheus::TEXT_FORMAT);
    }
}
