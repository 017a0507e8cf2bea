//! The simulator: an LLM server's timing (prefill rate, per-token decode time by batch size, max
//! batch, FIFO queue) and plausible text, without a model. Used in-process by the edge agent's
//! `sim` backend ([`backend`]) and by the `pice-sim` OpenAI-compatible server ([`server`]).
//! Everything it returns says it is simulated.

pub mod ask;
pub mod backend;
pub mod cli;
pub mod engine;
mod error;
mod metrics;
pub mod prefix_cache;
pub mod profile;
pub mod profiles;
pub mod server;
pub mod simulator;
pub mod textgen;

pub use error::Error;
pub use profile::{Profile, TpotPoint};
pub use simulator::Simulator;

/// Appended to every model name the simulator reports.
pub const SIMULATED_SUFFIX: &str = "-simulated";
/// The `system_fingerprint` of every simulated completion.
pub const SYSTEM_FINGERPRINT: &str = "pice-sim";
/// The response header, set to `true` on every simulator response.
pub const SIMULATED_HEADER: &str = "x-pice-simulated";
