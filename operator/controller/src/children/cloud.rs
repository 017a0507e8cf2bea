//! The cloud LLM tier: a Deployment on the GPU nodes and a Service, unless the LLM is external.

use std::collections::BTreeMap;

use pice_api::{CloudSpec, InferencePool};

use super::{Children, Identity, names, pod, workload};

/// Adds the cloud Deployment and Service (nothing for an external endpoint).
pub fn build(pool: &InferencePool, base: &Identity, children: &mut Children) {
    let cloud = &pool.spec.cloud;
    let Some(image) = cloud.image.as_deref() else { return };
    let id = Identity {
        name: names::cloud(&base.name),
        labels: names::labels(&base.name, "cloud"),
        ..base.clone()
    };
    let mut container =
        pod::container("llm", image, cloud.args.clone().unwrap_or_default(), ("http", cloud.port()));
    container.resources = cloud.resources.clone();
    let mut pod_spec = pod::placed_pod(vec![container], &cloud.node_selector, &cloud.tolerations);
    pod_spec.topology_spread_constraints = Some(pod::spread_over_nodes(&id.labels));
    let deployment = workload::deployment(&id, cloud.replicas(), pod_spec, BTreeMap::new());
    children.add_workload(&id, deployment);
    children.services.push(workload::service(&id, &[("http", cloud.port())], "ClusterIP", false));
}

/// URL of the cloud LLM as the gateway reaches it.
pub fn url(pool: &str, namespace: &str, cloud: &CloudSpec) -> String {
    match &cloud.endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').trim_end_matches("/v1").to_string(),
        None => format!("http://{}.{namespace}.svc:{}", names::cloud(pool), cloud.port()),
    }
}
