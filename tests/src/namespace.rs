//! A fresh namespace per test, whose objects are printed when the test fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use rand::Rng;

use crate::kubectl;

/// A namespace that belongs to one test.
#[derive(Clone)]
pub struct TestNamespace {
    /// Namespace name.
    pub name: String,
    /// Cluster client.
    pub client: Client,
}

impl TestNamespace {
    /// Creates `e2e-<prefix>-<random>`, runs `body` in it, and deletes it when `body` passes.
    /// When `body` panics it prints the namespace's objects and events, then panics on.
    pub async fn run<F, Fut>(prefix: &str, body: F)
    where
        F: FnOnce(TestNamespace) -> Fut,
        Fut: Future<Output = ()>,
    {
        let client = crate::client().await;
        let suffix: u32 = rand::rng().random_range(0..1_000_000);
        let name = format!("e2e-{prefix}-{suffix:06}");
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .unwrap_or_else(|e| panic!("namespace object: {e}"));
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        let ns = TestNamespace { name: name.clone(), client: client.clone() };
        match AssertUnwindSafe(body(ns.clone())).catch_unwind().await {
            Ok(()) => {
                let _ = Api::<Namespace>::all(client).delete(&name, &DeleteParams::background()).await;
            }
            Err(panic) => {
                ns.dump().await;
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Prints the state of the namespace to stderr.
    pub async fn dump(&self) {
        let ns = self.name.as_str();
        let wide = kubectl::run(
            &["get", "inferencepools,deployments,pods,services,leases", "-n", ns, "-o", "wide"],
            None,
        )
        .await;
        let pools = kubectl::run(&["get", "inferencepools", "-n", ns, "-o", "yaml"], None).await;
        let events = kubectl::run(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"], None).await;
        eprintln!(
            "===== state of namespace {ns} =====\n{}{}\n{}{}",
            wide.stdout, wide.stderr, pools.stdout, events.stdout
        );
    }

    /// An `Api` for namespaced kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}
