//! PICE operator: the `InferencePool` API and the controller that reconciles it.

pub mod api;
pub mod autoscale;
pub mod bench;
pub mod children;
pub mod controller;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod gateway;
pub mod http;
pub mod leader;
pub mod local;
pub mod metrics;
pub mod placement;
pub mod run;
