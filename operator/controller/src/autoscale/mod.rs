//! Autoscaling of edge replicas on measured queue depth: the recommendation (pure, HPA
//! semantics), the sources that measure the queue, and the gateways' wake-up count that brings
//! edge pools back from zero.

pub mod recommend;
pub mod source;
pub mod wakeup;

pub use recommend::{Decision, History, Policy, decide};
pub use source::{QueueMeasurer, Target};
pub use wakeup::{Wake, WakeCounts};
