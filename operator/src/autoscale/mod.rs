//! Autoscaling of edge replicas on measured queue depth: the recommendation (pure, HPA
//! semantics) and the sources that measure the queue.

pub mod recommend;
pub mod source;

pub use recommend::{Decision, History, Policy, decide};
pub use source::{QueueMeasurer, Target};
