//! Acting as a ServiceAccount from outside the cluster: a kubeconfig with a token of it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::kubectl;

/// Writes `dir/NAME.kubeconfig`: the API server and CA of the current kubeconfig, and a token of
/// ServiceAccount `namespace/name` from `kubectl create token` (valid for an hour).
pub async fn kubeconfig(namespace: &str, name: &str, dir: &Path) -> PathBuf {
    let token = kubectl::ok(&["create", "token", name, "-n", namespace, "--duration=1h"], None).await;
    let admin = kubectl::ok(&["config", "view", "--raw", "--minify", "--flatten", "-o", "json"], None).await;
    let admin: serde_json::Value =
        serde_json::from_str(&admin).unwrap_or_else(|e| panic!("parsing the current kubeconfig: {e}"));
    let cluster = &admin["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": {
            "server": cluster["server"],
            "certificate-authority-data": cluster["certificate-authority-data"],
        }}],
        "users": [{"name": name, "user": {"token": token.trim()}}],
        "contexts": [{"name": name, "context": {"cluster": "cluster", "user": name, "namespace": namespace}}],
        "current-context": name,
    });
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, config.to_string()).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}
