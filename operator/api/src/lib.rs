//! The `InferencePool` API (`pice.dev/v1alpha1`): spec, status and CRD generation, and the
//! gateway's configuration format ([`gateway_config`]) that the operator renders and the gateway
//! reads. Depends on no other crate of PICE.

mod cloud;
mod crd;
mod edge;
pub mod gateway_config;
mod pool;
mod routing;
mod schema;
mod status;
pub mod weights;

pub use cloud::CloudSpec;
pub use crd::{CRD_FILE, crd_yaml};
pub use edge::{
    AutoscalingSpec, EdgeModel, EdgePool, EdgeSpec, ModelEngine, PrometheusSource, QueueSource, ReplicaRange,
};
pub use pool::{GatewayService, GatewaySpec, InferencePool, InferencePoolSpec, ServiceType};
pub use routing::{
    AdmissionSpec, EnsembleSelector, EnsembleSpec, ExpansionSpec, FallbackSpec, RoutingMode, RoutingSpec,
    SketchSpec,
};
pub use status::{CloudStatus, EdgePoolStatus, GatewayStatus, InferencePoolStatus};
