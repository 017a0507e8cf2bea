//! A real Prometheus server (Debian's `prometheus`) scraping edge agents and PICE's other
//! processes found through file-based service discovery lists that the test keeps up to date.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::operator::free_port;
use crate::poll;

/// A running Prometheus, killed when dropped.
pub struct Prometheus {
    child: Child,
    /// Base URL of its HTTP API.
    pub url: String,
    targets: PathBuf,
    services: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping every second the targets later given to [`Self::scrape`],
    /// each labelled `edge_pool=<edge_pool>`, and those given to [`Self::scrape_services`].
    pub async fn start(edge_pool: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let (targets, services) = (dir.path().join("targets.json"), dir.path().join("services.json"));
        for file in [&targets, &services] {
            std::fs::write(file, "[]").unwrap_or_else(|e| panic!("targets file: {e}"));
        }
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n- job_name: edge-agents\n  file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n  \
             relabel_configs: [{{target_label: edge_pool, replacement: '{edge_pool}'}}]\n\
             - job_name: pice\n  file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n",
            targets.display(),
            services.display()
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap_or_else(|e| panic!("config file: {e}"));
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus (apt-get install prometheus): {e}"));
        let url = format!("http://{addr}");
        let ready = format!("{url}/-/ready");
        poll::until("prometheus ready", Duration::from_secs(30), || async {
            reqwest::get(&ready).await.ok()?.status().is_success().then_some(())
        })
        .await;
        Self { child, url, targets, services, _dir: dir }
    }

    /// Replaces the scraped agents (`host:port` of agents' metrics endpoints).
    pub fn scrape(&self, targets: &[String]) {
        write_targets(&self.targets, targets);
    }

    /// Replaces the other scraped processes (`host:port` serving `/metrics`: operator, gateway).
    pub fn scrape_services(&self, targets: &[String]) {
        write_targets(&self.services, targets);
    }

    /// The result of an instant query (`data.result`), or why there is none.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", expr)])
            .map_err(|e| e.to_string())?;
        let response = reqwest::get(url).await;
        let body: serde_json::Value =
            response.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        match body["data"]["result"].as_array() {
            Some(result) if body["status"] == "success" => Ok(result.clone()),
            _ => Err(format!("{}: {}", body["errorType"], body["error"])),
        }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Replaces a file-based service discovery list atomically.
fn write_targets(file: &Path, targets: &[String]) {
    let list = serde_json::json!([{"targets": targets}]).to_string();
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, list).unwrap_or_else(|e| panic!("targets file: {e}"));
    std::fs::rename(&tmp, file).unwrap_or_else(|e| panic!("targets file: {e}"));
}
