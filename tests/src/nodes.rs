//! Fake nodes (managed by kwok) that a test adds to the cluster for an edge pool of its own, or
//! as general-purpose room for more pods.

use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// Nodes labelled `pice.dev/edge-pool=<pool>`, tainted like the shared edge nodes; or general
/// ones (see [`Self::general`]).
pub struct FakeNodes {
    client: Client,
    /// The edge pool label value, or the name prefix of general nodes.
    pub pool: String,
    edge: bool,
    names: Vec<String>,
}

impl FakeNodes {
    /// An empty set of nodes for edge pool `pool`.
    pub fn new(client: Client, pool: &str) -> Self {
        Self { client, pool: pool.into(), edge: true, names: Vec::new() }
    }

    /// An empty set of untainted nodes labelled `pice.dev/tier=general`, named `<prefix>-<i>`.
    pub fn general(client: Client, prefix: &str) -> Self {
        Self { client, pool: prefix.into(), edge: false, names: Vec::new() }
    }

    /// Adds a node with `cpu` cores and `memory` that kwok marks Ready.
    pub async fn add(&mut self, cpu: &str, memory: &str) {
        self.add_with_pods(cpu, memory, "110").await;
    }

    /// Adds a node with `cpu` cores, `memory` and room for `pods` pods.
    pub async fn add_with_pods(&mut self, cpu: &str, memory: &str, pods: &str) {
        let name = format!("{}-{}", self.pool, self.names.len());
        let (labels, taints) = if self.edge {
            let labels = json!({"type": "kwok", "kubernetes.io/hostname": name, "pice.dev/tier": "edge", "pice.dev/edge-pool": self.pool});
            (labels, json!([{"key": "pice.dev/edge", "value": "true", "effect": "NoSchedule"}]))
        } else {
            (json!({"type": "kwok", "kubernetes.io/hostname": name, "pice.dev/tier": "general"}), json!([]))
        };
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": labels},
            "spec": {"taints": taints},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
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
