//! Edge discovery: which edge agents exist. In a cluster, the gateway watches the
//! EndpointSlices of the pool's headless edge Services (named in the configuration) and keeps
//! the ready endpoints; outside one (`pice local`, tests), a static list of `host:port`.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tracing::{info, warn};

use super::replicas::Replicas;
use pice_api::gateway_config::EdgeTarget;

/// The label EndpointSlices carry with the name of their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The name of the edge agents' gRPC port in their Service.
const GRPC_PORT_NAME: &str = "grpc";

/// Checks a static list of `host:port` addresses.
pub fn static_endpoints(list: &[String]) -> Result<BTreeSet<String>, String> {
    list.iter()
        .map(|entry| {
            let entry = entry.trim();
            let valid = entry
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if valid {
                Ok(entry.to_owned())
            } else {
                Err(format!("edge endpoint {entry:?} is not host:port"))
            }
        })
        .collect()
}

/// Watches the EndpointSlices of `targets`' Services in `namespace` and keeps `replicas` in
/// step; runs until the process stops (watch errors are retried with backoff).
pub async fn watch_endpoint_slices(
    client: kube::Client,
    namespace: String,
    targets: Vec<EdgeTarget>,
    replicas: Arc<Replicas>,
) {
    let services: Vec<&str> = targets.iter().map(|t| t.service.as_str()).collect();
    let selector = format!("{SERVICE_NAME_LABEL} in ({})", services.join(","));
    info!(%namespace, %selector, "watching edge EndpointSlices");
    let api: Api<EndpointSlice> = Api::namespaced(client, &namespace);
    let (store, writer) = reflector::store();
    let events =
        reflector(writer, watcher(api, watcher::Config::default().labels(&selector))).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => {
                let slices: Vec<EndpointSlice> = store.state().iter().map(|s| (**s).clone()).collect();
                replicas.set(&slice_addresses(&slices, &targets));
            }
            Err(error) => warn!(%error, "EndpointSlice watch failed; retrying"),
        }
    }
}

/// The `host:port` of every ready endpoint in `slices` that belongs to one of `targets`.
pub fn slice_addresses(slices: &[EndpointSlice], targets: &[EdgeTarget]) -> BTreeSet<String> {
    let mut addresses = BTreeSet::new();
    for slice in slices {
        let service = slice.metadata.labels.as_ref().and_then(|labels| labels.get(SERVICE_NAME_LABEL));
        let Some(target) = targets.iter().find(|t| Some(&t.service) == service) else {
            continue;
        };
        let port = grpc_port(slice).unwrap_or(target.port);
        for endpoint in slice.endpoints.iter().filter(|e| is_ready(e)) {
            addresses.extend(endpoint.addresses.iter().map(|address| host_port(address, port)));
        }
    }
    addresses
}

fn grpc_port(slice: &EndpointSlice) -> Option<i32> {
    slice.ports.as_ref()?.iter().find(|p| p.name.as_deref() == Some(GRPC_PORT_NAME))?.port
}

/// Ready unless a condition says otherwise (an absent `ready` means ready).
fn is_ready(endpoint: &k8s_openapi::api::discovery::v1::Endpoint) -> bool {
    let conditions = endpoint.conditions.as_ref();
    conditions.and_then(|c| c.ready) != Some(false) && conditions.and_then(|c| c.terminating) != Some(true)
}

fn host_port(address: &str, port: i32) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(service: &str) -> EdgeTarget {
        EdgeTarget { edge_pool: "east".into(), model: "qwen".into(), service: service.into(), port: 50051 }
    }

    fn slice(service: &str, port: Option<i32>, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{service}-abc"), "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4",
            "ports": port.map(|p| vec![serde_json::json!({"name": "grpc", "port": p})]),
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    #[test]
    fn ready_endpoints_of_the_pools_services_are_kept_with_their_grpc_port() {
        let slices = [
            slice(
                "pool-east-qwen",
                Some(50052),
                serde_json::json!([
                    {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                    {"addresses": ["10.0.0.3"]},
                    {"addresses": ["10.0.0.4"], "conditions": {"ready": true, "terminating": true}},
                ]),
            ),
            slice("pool-west-qwen", None, serde_json::json!([{"addresses": ["fd00::5"]}])),
            slice("someone-else", Some(1), serde_json::json!([{"addresses": ["10.9.9.9"]}])),
        ];
        let addresses = slice_addresses(&slices, &[target("pool-east-qwen"), target("pool-west-qwen")]);
        let expected = ["10.0.0.1:50052", "10.0.0.3:50052", "[fd00::5]:50051"];
        assert_eq!(addresses, expected.iter().map(|a| a.to_string()).collect());
    }

    #[test]
    fn static_endpoints_must_be_host_and_port() {
        let list = vec!["127.0.0.1:50051".to_owned(), " edge-1:7000 ".to_owned()];
        assert_eq!(static_endpoints(&list).unwrap().len(), 2);
        assert!(static_endpoints(&["127.0.0.1".to_owned()]).unwrap_err().contains("host:port"));
        assert!(static_endpoints(&[":80".to_owned()]).is_err());
    }
}
