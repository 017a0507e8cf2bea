//! Fake nodes (managed by kwok) that a test adds to the cluster for an edge pool of its own.

use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// Nodes labelled `pice.dev/edge-pool=<pool>`, tainted like the shared edge nodes.
pub struct FakeNodes {
    client: Client,
    /// The edge pool label value.
    pub pool: String,
    names: Vec<String>,
}

impl FakeNodes {
    /// An empty set of nodes for edge pool `pool`.
    pub fn new(client: Client, pool: &str) -> Self {
        Self { client, pool: pool.into(), names: Vec::new() }
    }

    /// Adds a node with `cpu` cores and `memory` that kwok marks Ready.
    pub async fn add(&mut self, cpu: &str, memory: &str) {
        let name = format!("{}-{}", self.pool, self.names.len());
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": name, "pice.dev/tier": "edge", "pice.dev/edge-pool": self.pool},
            },
            "spec": {"taints": [{"key": "pice.dev/edge", "value": "true", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            },
        }))
        .unwrap_or_else(|e| panic!("node object: {e}"));
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("creating node {name}: {e}"));
        self.names.push(name);
    }

    /// Deletes the nodes (call at the end of the test).
    pub async fn delete(&self) {
        for name in &self.names {
            let _ = Api::<Node>::all(self.client.clone()).delete(name, &DeleteParams::default()).await;
        }
    }
}
