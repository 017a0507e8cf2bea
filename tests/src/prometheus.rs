//! A real Prometheus server (Debian's `prometheus`) scraping edge agents found through a
//! file-based service discovery list that the test keeps up to date.

use std::path::PathBuf;
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
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping every second the targets later given to [`Self::scrape`],
    /// each labelled `edge_pool=<edge_pool>`.
    pub async fn start(edge_pool: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let targets = dir.path().join("targets.json");
        std::fs::write(&targets, "[]").unwrap_or_else(|e| panic!("targets file: {e}"));
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n- job_name: edge-agents\n  file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n  \
             relabel_configs: [{{target_label: edge_pool, replacement: '{edge_pool}'}}]\n",
            targets.display()
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
        Self { child, url, targets, _dir: dir }
    }

    /// Replaces the scraped targets (`host:port` of agents' metrics endpoints).
    pub fn scrape(&self, targets: &[String]) {
        let list = serde_json::json!([{"targets": targets}]).to_string();
        let tmp = self.targets.with_extension("tmp");
        std::fs::write(&tmp, list).unwrap_or_else(|e| panic!("targets file: {e}"));
        std::fs::rename(&tmp, &self.targets).unwrap_or_else(|e| panic!("targets file: {e}"));
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
