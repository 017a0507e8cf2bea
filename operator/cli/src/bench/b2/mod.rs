//! B2: what the PICE gateway adds in cloud-only pass-through, against vllm-router,
//! sglang-router, Envoy and LiteLLM, each its own process in front of the same zero-delay
//! backend process, driven by the same load generator in the same run.

pub mod backend;
pub mod cli;
pub mod load;
pub mod plot;
pub mod report;
pub mod rss;
pub mod run;
pub mod start;
pub mod stats;
pub mod system;

pub use cli::B2Args;
pub use run::run;
