//! The gateway's edge discovery against a real API server: `pice-gateway --namespace` watches
//! the EndpointSlices of its edge Services and follows them as they are created, changed and
//! deleted.
//!
//! The slices are written by the test, not by the EndpointSlice controller: the API server
//! refuses loopback addresses in EndpointSlices, and kwok's fake pods get loopback IPs, so the
//! controller cannot publish them here. The addresses are from TEST-NET-1 (192.0.2.0/24): the
//! test checks what the gateway discovers (its `pice_gateway_edge_endpoints` gauge), not calls
//! to the agents, which the gateway's socket tests cover.

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use pice_tests::gateway::spawn;
use pice_tests::namespace::TestNamespace;
use pice_tests::poll;
use serde_json::{Value, json};

const SERVICE: &str = "pool-site-qwen";

/// An EndpointSlice of `service` with one endpoint per (address, ready).
fn slice(name: &str, service: &str, endpoints: &[(&str, bool)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, ready)| json!({"addresses": [address], "conditions": {"ready": ready}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": 50051, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap_or_else(|e| panic!("EndpointSlice object: {e}"))
}

/// A gateway configuration whose only edge target is `SERVICE`.
fn config(cloud_url: &str) -> Value {
    json!({
        "pool": "pool", "port": 8080,
        "cloud": {"url": cloud_url, "model": "llama-3.1-70b-instruct"},
        "edge": [{"edgePool": "site", "model": "qwen", "service": SERVICE, "port": 50051}],
        "routing": {"mode": "auto"},
    })
}

async fn endpoints(gateway: &str) -> Option<f64> {
    let text = reqwest::get(format!("{gateway}/metrics")).await.ok()?.text().await.ok()?;
    let series = r#"pice_gateway_edge_endpoints{pool="pool"} "#;
    text.lines().find_map(|line| line.strip_prefix(series))?.parse().ok()
}

async fn wait_endpoints(gateway: &str, count: f64) {
    poll::until(&format!("the gateway to know {count} edge endpoints"), Duration::from_secs(20), || async {
        (endpoints(gateway).await == Some(count)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_gateway_follows_the_ready_endpoints_of_its_edge_services() {
    TestNamespace::run("discovery", |ns| async move {
        let slices = ns.api::<EndpointSlice>();
        let create = |slice: EndpointSlice| {
            let slices = slices.clone();
            async move {
                slices.create(&PostParams::default(), &slice).await.unwrap_or_else(|e| panic!("{e}"));
            }
        };
        create(slice("first", SERVICE, &[("192.0.2.10", true), ("192.0.2.11", false)])).await;

        let (_cloud, cloud_addr) = spawn("pice-sim", &["--profile", "cloud-llama70b-h100x4"]).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("gateway.json");
        std::fs::write(&file, config(&format!("http://{cloud_addr}")).to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let args = [format!("--config={}", file.display()), format!("--namespace={}", ns.name)];
        let (_gateway, addr) = spawn("pice-gateway", &[&args[0], &args[1]]).await;
        let gateway = format!("http://{addr}");
        wait_endpoints(&gateway, 1.0).await;

        create(slice("second", SERVICE, &[("192.0.2.12", true), ("192.0.2.13", true)])).await;
        create(slice("unrelated", "someone-else", &[("192.0.2.99", true)])).await;
        wait_endpoints(&gateway, 3.0).await;

        slices.delete("first", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
        wait_endpoints(&gateway, 2.0).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(endpoints(&gateway).await, Some(2.0), "the unrelated Service's slice never counts");
    })
    .await;
}
