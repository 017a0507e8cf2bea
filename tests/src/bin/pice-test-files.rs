//! `pice-test-files DIR [ADDR]`: serves the files of DIR over plain HTTP (GET /NAME), so e2e
//! tests on the real node can fetch a model's weights from a pod inside the test's namespace,
//! as a pool's `weights.url` does from a file server of the user's.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::io::ReaderStream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: pice-test-files DIR [ADDR]"))?);
    let addr: SocketAddr = args.next().unwrap_or_else(|| "0.0.0.0:8000".into()).parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let app =
        Router::new().route("/{name}", get(serve)).route("/healthz", get(|| async { "ok" })).with_state(dir);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve(State(dir): State<PathBuf>, Path(name): Path<String>) -> Response {
    if name.contains('/') || name.starts_with('.') {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::File::open(dir.join(&name)).await {
        Ok(file) => Body::from_stream(ReaderStream::new(file)).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
