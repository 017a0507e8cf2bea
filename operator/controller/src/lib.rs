//! PICE operator: the controller that reconciles `InferencePool`s into their children, places
//! edge replicas within node capacity and autoscales them on measured queue depth.

pub mod autoscale;
pub mod children;
pub mod controller;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod run;
