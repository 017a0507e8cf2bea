//! The edge tier: per edge pool and model, a Deployment (model server plus `pice-edge-agent`
//! sidecar) on the pool's nodes and a headless Service through which the gateway finds agents.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

use pice_api::{EdgeModel, InferencePool, ModelEngine};

use super::{AGENT_GRPC_PORT, AGENT_METRICS_PORT};
use super::{Children, EdgeReplicas, Identity, Images, names, pod, weights, workload};

/// Name of the model server's container in an edge pod.
pub const MODEL_CONTAINER: &str = "model";
/// Name of the edge agent's container in an edge pod.
pub const AGENT_CONTAINER: &str = "edge-agent";

/// Adds one Deployment and headless Service per edge pool and model.
pub fn build(
    pool: &InferencePool,
    base: &Identity,
    images: &Images,
    replicas: &EdgeReplicas,
    children: &mut Children,
) {
    for edge_pool in &pool.spec.edge.pools {
        for model in &edge_pool.models {
            let id = Identity {
                name: names::edge(&base.name, &edge_pool.name, &model.name),
                labels: names::edge_labels(&base.name, &edge_pool.name, &model.name),
                ..base.clone()
            };
            let count = replicas.get(&id.name).copied().unwrap_or(edge_pool.replicas.min);
            let (containers, weights_reader) = match model.engine {
                ModelEngine::Server => {
                    (vec![model_server(model), agent(model, &images.edge_agent)], MODEL_CONTAINER)
                }
                ModelEngine::Llama => (vec![llama_agent(model, &images.edge_agent_llama)], AGENT_CONTAINER),
            };
            let mut pod_spec = pod::placed_pod(containers, &edge_pool.node_selector, &edge_pool.tolerations);
            pod_spec.topology_spread_constraints = Some(pod::spread_over_nodes(&id.labels));
            if let Some(model_weights) = &model.weights {
                weights::attach(model_weights, weights_reader, &images.edge_agent, &mut pod_spec);
            }
            children.add_workload(&id, workload::deployment(&id, count, pod_spec, BTreeMap::new()));
            let ports = [("grpc", AGENT_GRPC_PORT), ("metrics", AGENT_METRICS_PORT)];
            children.services.push(workload::service(&id, &ports, "ClusterIP", true));
        }
    }
}

fn model_server(model: &EdgeModel) -> Container {
    let mut container =
        pod::container(MODEL_CONTAINER, &model.image, model.args.clone(), ("http", model.port));
    container.resources = model.resources.clone();
    container
}

/// The sidecar in front of the model server container.
fn agent(model: &EdgeModel, image: &str) -> Container {
    let backend = ["--backend=openai".into(), format!("--backend-url=http://127.0.0.1:{}/v1", model.port)];
    agent_container(model, image, &backend)
}

/// The agent that runs the model itself (engine `llama`), with the model server's resources.
fn llama_agent(model: &EdgeModel, image: &str) -> Container {
    let file = model.weights.as_ref().and_then(|w| w.file_path()).unwrap_or_default();
    let mut container =
        agent_container(model, image, &["--backend=llama".into(), format!("--model-path={file}")]);
    container.resources = model.resources.clone();
    // Loading the weights takes a while; readiness says when, liveness must not kill it first.
    if let Some(probe) = container.liveness_probe.as_mut() {
        probe.initial_delay_seconds = Some(30);
    }
    container
}

fn agent_container(model: &EdgeModel, image: &str, backend: &[String]) -> Container {
    let mut args = backend.to_vec();
    args.extend([
        format!("--model={}", model.name),
        format!("--slots={}", model.slots),
        format!("--listen=0.0.0.0:{AGENT_GRPC_PORT}"),
        format!("--metrics-listen=0.0.0.0:{AGENT_METRICS_PORT}"),
    ]);
    let mut container = pod::container(AGENT_CONTAINER, image, args, ("grpc", AGENT_GRPC_PORT));
    container.ports.get_or_insert_with(Vec::new).push(pod::tcp_port("metrics", AGENT_METRICS_PORT));
    container.readiness_probe = Some(pod::http_probe("/readyz", "metrics"));
    container.liveness_probe = Some(pod::http_probe("/healthz", "metrics"));
    container.security_context = Some(pod::restricted_security());
    container
}
