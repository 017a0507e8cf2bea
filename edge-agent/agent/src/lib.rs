//! The edge agent: a gRPC service in front of one model server that expands sketch points with
//! a bounded queue, deadlines, cancellation, load reports, health and metrics.
//!
//! Backends: `openai` ([`pice_wire::openai_client`], any OpenAI-compatible server), `sim` (the
//! simulator in-process, [`pice_sim::backend`]) and `llama` ([`llama`], cargo feature `llama`).

mod admission;
pub mod cli;
mod deadline;
pub mod error;
mod expansion;
pub mod fetch;
#[cfg(feature = "llama")]
pub mod llama;
mod metrics;
mod rate;
mod readiness;
pub mod server;
pub mod service;

pub use error::Error;
pub use readiness::SERVICE_NAME;
pub use server::{AgentSettings, BoundAgent, bind};
pub use service::Defaults;
