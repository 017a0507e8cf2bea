//! The operator's HTTP endpoints: `/metrics`, `/healthz` and `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

/// What the endpoints read.
#[derive(Clone)]
pub struct Probes {
    /// The registry served at `/metrics`.
    pub registry: Registry,
    /// Set once the operator reached the API server and joined the leader election.
    pub ready: Arc<AtomicBool>,
}

/// The router of the operator's HTTP endpoints.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(probes)
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&probes.registry.gather(), &mut body) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    if probes.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}
