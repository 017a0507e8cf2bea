//! The edge agent: a gRPC service in front of one model server that expands sketch points with
//! a bounded queue, deadlines, cancellation, load reports, health and metrics.

mod admission;
pub mod cli;
mod deadline;
mod expansion;
mod metrics;
mod rate;
mod readiness;
pub mod server;
pub mod service;
pub mod tls;

pub use readiness::SERVICE_NAME;
pub use server::{AgentSettings, BoundAgent, bind};
pub use service::Defaults;
