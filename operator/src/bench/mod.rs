//! Benchmark B1 (BENCHMARKS.md): cloud-only, SoT-on-cloud, PICE progressive and PICE `auto` on
//! the same emulated hardware, under open-loop Poisson load, at several cloud–edge link settings.
//!
//! Real parts: the `pice-sim`, `pice-edge-agent` and `pice-gateway` processes, their sockets,
//! gRPC and HTTP; only the GPU arithmetic is simulated (the profiles in
//! `edge-agent/src/sim/profiles.rs`) and the cloud–edge link is emulated by [`link`].

pub mod cli;
pub mod link;
pub mod load;
pub mod plot;
pub mod procs;
pub mod report;
pub mod stats;
pub mod sweep;

pub use cli::B1Args;
pub use sweep::run;
