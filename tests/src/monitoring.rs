//! The CRDs of prometheus-operator (ServiceMonitor, PrometheusRule) that the chart's monitoring
//! switches need, taken from its Go module (the Go module proxy is reachable here; no registry of
//! container images or charts is).

use std::path::PathBuf;

use crate::kubectl;

/// prometheus-operator release whose CRDs are installed (its module holds them as YAML).
const MODULE: &str = "github.com/prometheus-operator/prometheus-operator@v0.85.0";

/// Downloads the module into the Go module cache (once) and returns its directory.
async fn module_dir() -> PathBuf {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let out = tokio::process::Command::new("go")
        .args(["mod", "download", "-json", MODULE])
        .current_dir(tmp.path())
        .env("GOFLAGS", "-mod=mod")
        .output()
        .await
        .unwrap_or_else(|e| panic!("running go (needed for the prometheus-operator CRDs): {e}"));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("go mod download {MODULE}: {e}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    match info["Dir"].as_str() {
        Some(dir) => PathBuf::from(dir),
        None => panic!("go mod download {MODULE} failed: {info}"),
    }
}

/// Installs the ServiceMonitor and PrometheusRule CRDs (idempotent) and waits until they serve.
pub async fn install_crds() {
    let dir = module_dir().await.join("example/prometheus-operator-crd");
    for kind in ["servicemonitors", "prometheusrules"] {
        let file = dir.join(format!("monitoring.coreos.com_{kind}.yaml"));
        kubectl::ok(&["apply", "--server-side", "--force-conflicts", "-f", &file.to_string_lossy()], None)
            .await;
        let crd = format!("crd/{kind}.monitoring.coreos.com");
        kubectl::ok(&["wait", "--for=condition=Established", "--timeout=60s", &crd], None).await;
    }
}
