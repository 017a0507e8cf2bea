//! The `InferencePool` custom resource: one cloud LLM tier, edge SLM pools, a gateway and routing.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CloudSpec, EdgeSpec, InferencePoolStatus, RoutingSpec};

/// A progressive inference pool: a cloud LLM writes short sketches, edge SLMs expand the points
/// in parallel, and a gateway serves the merged answer through an OpenAI-compatible API.
// Several `printcolumn(type_ = ...)` attributes are one column each, not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "pice.dev",
    version = "v1alpha1",
    kind = "InferencePool",
    namespaced,
    status = "InferencePoolStatus",
    shortname = "picepool",
    category = "pice",
    derive = "PartialEq",
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.routing.mode",
        description = "Routing mode"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether every tier is ready"
    ),
    printcolumn(
        name = "Edge",
        type_ = "string",
        json_path = ".status.edgeReplicas",
        description = "Ready/desired edge replicas"
    ),
    printcolumn(
        name = "Queue",
        type_ = "number",
        json_path = ".status.queueDepth",
        description = "Measured edge queue depth"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// The cloud LLM tier: writes sketches and answers cloud-only requests.
    pub cloud: CloudSpec,
    /// The edge SLM tier: node pools whose SLMs expand sketch points.
    #[serde(default)]
    pub edge: EdgeSpec,
    /// The progressive gateway that serves the pool's OpenAI-compatible API.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// How the gateway routes requests between cloud-only and progressive serving.
    #[serde(default)]
    pub routing: RoutingSpec,
}

/// The progressive gateway Deployment and Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Number of gateway pods (default 1).
    #[serde(default = "default_gateway_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// The Service in front of the gateway.
    #[serde(default)]
    pub service: GatewayService,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        Self { replicas: default_gateway_replicas(), service: GatewayService::default() }
    }
}

/// The Service that exposes the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayService {
    /// Service type: `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Service port of the OpenAI-compatible API (1–65535, default 8080).
    #[serde(default = "default_gateway_port")]
    #[schemars(schema_with = "super::schema::port")]
    pub port: i32,
}

impl Default for GatewayService {
    fn default() -> Self {
        Self { type_: ServiceType::default(), port: default_gateway_port() }
    }
}

/// Kubernetes Service type of the gateway.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The type as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

fn default_gateway_replicas() -> i32 {
    1
}
fn default_gateway_port() -> i32 {
    8080
}
