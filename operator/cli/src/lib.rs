//! `pice`, PICE's developer command line: [`local`] runs an `InferencePool`'s data plane on this
//! machine as processes, [`bench`] runs the benchmarks.

pub mod bench;
pub mod cli;
pub mod local;
pub mod process;
