//! `pice local`: an `InferencePool`'s data plane (cloud LLM, edge agents, gateway) run on this
//! machine as child processes, from the same YAML file a cluster takes, no cluster needed.

pub mod bins;
pub mod cli;
pub mod demo;
pub mod error;
pub mod model_file;
pub mod plan;
pub mod pool_file;
pub mod stack;
pub mod usage;

pub use error::LocalError;
