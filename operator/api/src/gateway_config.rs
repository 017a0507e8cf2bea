//! The gateway's configuration file, rendered by the operator into a ConfigMap and read by
//! `pice-gateway` (or written by `pice local`), and the other names the operator and the gateway
//! share. One place, so both sides keep one contract.

use serde::{Deserialize, Serialize};

use crate::RoutingSpec;

/// File name of the configuration inside the gateway's ConfigMap and mount.
pub const CONFIG_FILE: &str = "gateway.json";

/// Name of the gateway's counter of requests that wanted the edge tier but found no usable edge
/// replica; the operator reads it from the gateway pods to wake edge pools scaled to zero.
pub const EDGE_WAKEUP_REQUESTS: &str = "pice_gateway_edge_wakeup_requests_total";

/// Everything a gateway needs to serve one pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    /// Name of the pool served.
    pub pool: String,
    /// Port of the OpenAI-compatible API.
    pub port: i32,
    /// The cloud LLM.
    pub cloud: CloudTarget,
    /// The edge models, one entry per edge pool and model.
    pub edge: Vec<EdgeTarget>,
    /// Routing settings, copied from the pool's spec.
    pub routing: RoutingSpec,
}

/// Where the cloud LLM is reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudTarget {
    /// Base URL of the OpenAI-compatible API, ending before `/v1`.
    pub url: String,
    /// Model name sent in requests.
    pub model: String,
}

/// One edge model, discovered through the EndpointSlices of its headless Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeTarget {
    /// Edge pool name.
    pub edge_pool: String,
    /// Model name.
    pub model: String,
    /// Headless Service whose EndpointSlices list the edge agents.
    pub service: String,
    /// gRPC port of the edge agents.
    pub port: i32,
}
