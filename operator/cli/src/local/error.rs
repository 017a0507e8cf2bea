//! What can stop `pice local`, each message saying what to do about it.

use std::path::PathBuf;

/// An error of `pice local`; `main` prints it and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read the pool file {path}: {source}")]
    ReadPool { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid InferencePool:\n  {}", problems.join("\n  "))]
    InvalidPool { path: PathBuf, problems: Vec<String> },
    #[error("port {port} is in use on 127.0.0.1: stop what listens there or pick another port with --port")]
    PortInUse { port: u16 },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Port { port: u16, source: std::io::Error },
    #[error("model file {path} not found: {hint}")]
    MissingModel { path: PathBuf, hint: String },
    #[error("{name} not found at {path}: {hint}")]
    MissingBinary { name: String, path: PathBuf, hint: String },
    #[error("{0}")]
    Usage(String),
    #[error("cannot serialise the gateway's configuration: {0}")]
    SerializeConfig(serde_json::Error),
    #[error("cannot write the gateway's configuration to {path}: {source}")]
    WriteConfig { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("the demo request in {mode} mode failed: {reason}")]
    Demo { mode: &'static str, reason: String },
    #[error("cannot create the log directory {path}: {source}")]
    LogDir { path: PathBuf, source: std::io::Error },
}
