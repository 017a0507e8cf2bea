//! The agent's error type for starting and running it.

use std::io;
use std::net::SocketAddr;

use pice_wire::generation::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("invalid TLS configuration: {0}")]
    TlsFile(#[from] pice_wire::tls::TlsFileError),
    #[error("invalid TLS configuration: {0}")]
    Tls(tonic::transport::Error),
    #[error("gRPC server failed: {0}")]
    Grpc(tonic::transport::Error),
    #[error("HTTP server failed: {0}")]
    Http(io::Error),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}
