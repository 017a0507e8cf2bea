//! The progressive gateway: Deployment, Service, the ConfigMap with its rendered routing
//! configuration, and a ServiceAccount with a Role to watch the edge EndpointSlices.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, ServiceAccount, Volume, VolumeMount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use pice_api::InferencePool;
use pice_api::gateway_config::{CONFIG_FILE, CloudTarget, EdgeTarget, GatewayConfig};

use super::{AGENT_GRPC_PORT, GATEWAY_CONTAINER_PORT};
use super::{Children, Identity, Images, cloud, names, pod, workload};
use crate::error::{Error, Result};

/// Where the gateway's ConfigMap is mounted.
const CONFIG_DIR: &str = "/etc/pice";
/// Pod annotation with a checksum of the configuration, so a new configuration rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "pice.dev/config-hash";

/// Adds the gateway's objects.
pub fn build(pool: &InferencePool, base: &Identity, images: &Images, children: &mut Children) -> Result<()> {
    let id = Identity {
        name: names::gateway(&base.name),
        labels: names::labels(&base.name, "gateway"),
        ..base.clone()
    };
    let rendered = serde_json::to_string_pretty(&config(pool, &base.namespace)).map_err(|source| {
        Error::Serialize { what: format!("the configuration of gateway {}", id.name), source }
    })?;
    let hash = format!("{:016x}", names::fnv1a(rendered.as_bytes()));
    children.config_maps.push(ConfigMap {
        metadata: id.meta(),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), rendered)])),
        ..ConfigMap::default()
    });
    add_rbac(&id, children);
    let scales_to_zero = pool.spec.edge.pools.iter().any(|p| p.replicas.min == 0);
    let container = container(&id, &images.gateway, scales_to_zero);
    let mut pod_spec = pod::placed_pod(vec![container], &BTreeMap::new(), &[]);
    pod_spec.service_account_name = Some(id.name.clone());
    pod_spec.volumes = Some(vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource { name: id.name.clone(), ..Default::default() }),
        ..Volume::default()
    }]);
    pod_spec.topology_spread_constraints = Some(pod::spread_over_nodes(&id.labels));
    let annotations = BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_string(), hash)]);
    let replicas = pool.spec.gateway.replicas;
    children.add_workload(&id, workload::deployment(&id, replicas, pod_spec, annotations));
    let service = &pool.spec.gateway.service;
    let svc = workload::service(&id, &[("http", service.port)], service.type_.as_str(), false);
    children.services.push(svc);
    Ok(())
}

/// The gateway configuration rendered from the pool's spec.
pub fn config(pool: &InferencePool, namespace: &str) -> GatewayConfig {
    let name = kube::ResourceExt::name_any(pool);
    let edge = pool.spec.edge.pools.iter().flat_map(|edge_pool| {
        edge_pool.models.iter().map(|model| EdgeTarget {
            edge_pool: edge_pool.name.clone(),
            model: model.name.clone(),
            service: names::edge(&name, &edge_pool.name, &model.name),
            port: AGENT_GRPC_PORT,
        })
    });
    GatewayConfig {
        pool: name.clone(),
        port: GATEWAY_CONTAINER_PORT,
        cloud: CloudTarget {
            url: cloud::url(&name, namespace, &pool.spec.cloud),
            model: pool.spec.cloud.model.clone(),
        },
        edge: edge.collect(),
        routing: pool.spec.routing.clone(),
    }
}

/// URL of the gateway's Service inside the cluster.
pub fn url(pool: &InferencePool) -> String {
    let name = kube::ResourceExt::name_any(pool);
    let namespace = pool.metadata.namespace.as_deref().unwrap_or("default");
    let port = pool.spec.gateway.service.port;
    format!("http://{}.{namespace}.svc:{port}", names::gateway(&name))
}

/// The gateway container; with edge pools that may scale to zero it turns ready without an edge
/// replica, since its requests are what wakes them.
fn container(id: &Identity, image: &str, scales_to_zero: bool) -> k8s_openapi::api::core::v1::Container {
    let mut args = vec![
        format!("--config={CONFIG_DIR}/{CONFIG_FILE}"),
        format!("--listen=0.0.0.0:{GATEWAY_CONTAINER_PORT}"),
        format!("--namespace={}", id.namespace),
    ];
    if scales_to_zero {
        args.push("--ready-without-edge".into());
    }
    let mut container = pod::container("gateway", image, args, ("http", GATEWAY_CONTAINER_PORT));
    container.volume_mounts = Some(vec![VolumeMount {
        name: "config".into(),
        mount_path: CONFIG_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }]);
    container.readiness_probe = Some(pod::http_probe("/readyz", "http"));
    container.liveness_probe = Some(pod::http_probe("/healthz", "http"));
    container.security_context = Some(pod::restricted_security());
    container
}

fn add_rbac(id: &Identity, children: &mut Children) {
    children.service_accounts.push(ServiceAccount { metadata: id.meta(), ..Default::default() });
    children.roles.push(Role {
        metadata: id.meta(),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["discovery.k8s.io".into()]),
            resources: Some(vec!["endpointslices".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    });
    children.role_bindings.push(RoleBinding {
        metadata: id.meta(),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: id.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: id.name.clone(),
            namespace: Some(id.namespace.clone()),
            ..Subject::default()
        }]),
    });
}
