//! PICE edge agent: the gRPC expansion service, its model backends and the `pice-sim` simulator.
//!
//! - [`agent`]: the `pice-edge-agent` server (bounded queue, deadlines, cancellation, load,
//!   health, metrics, optional mTLS);
//! - [`backend`]: the [`backend::ModelBackend`] trait and its OpenAI-HTTP and simulator backends;
//! - [`sim`]: the simulator's timing model, text generator and OpenAI-compatible server;
//! - [`proto`]: the `pice.edge.v1` protocol shared with the gateway (which uses the client).

pub mod agent;
pub mod backend;
pub mod crypto;
pub mod error;
pub mod openai_wire;
pub mod prompt;
pub mod shutdown;
pub mod sim;
pub mod telemetry;

pub use error::Error;

/// The generated `pice.edge.v1` protocol: messages, the server trait and the client.
pub mod proto {
    tonic::include_proto!("pice.edge.v1");
}
