//! Harness of PICE's end-to-end tests: a cluster from `KUBECONFIG`, a namespace per test,
//! `kubectl` as a user runs it, the operator as a real process, and polling helpers.
//!
//! The tests drive whatever cluster `KUBECONFIG` names; `make e2e` starts the local control
//! plane of `tests/cluster/` for them.

pub mod agents;
pub mod apiserver;
pub mod edge;
pub mod gateway;
pub mod helm;
pub mod kubectl;
pub mod load;
pub mod metrics_text;
pub mod monitoring;
pub mod namespace;
pub mod nodes;
pub mod operator;
pub mod poll;
pub mod pools;
pub mod prometheus;
pub mod promql;
pub mod real_node;
pub mod service_account;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example pool of `deploy/examples/assistant.yaml` as JSON, for tests to change.
pub fn example_pool(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("deploy/examples/assistant.yaml"))
        .unwrap_or_else(|e| panic!("reading the example pool: {e}"));
    let mut pool: serde_json::Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing the example pool: {e}"));
    pool["metadata"]["name"] = name.into();
    pool
}

/// A client for the cluster `KUBECONFIG` names; panics with the way out when there is none.
pub async fn client() -> kube::Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: run the e2e tests with `make e2e`, which starts a local control plane"
        );
    }
    pice_wire::crypto::install_default_provider();
    kube::Client::try_default().await.unwrap_or_else(|e| panic!("connecting to the cluster: {e}"))
}
