//! The operator as a real process (`target/<profile>/pice-operator`), as a Deployment would run it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::poll;

/// A running `pice-operator` process, killed when dropped.
pub struct OperatorProcess {
    child: Child,
    /// Address of its `/metrics`, `/healthz` and `/readyz` endpoints.
    pub metrics_addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Path of one of the workspace's binaries next to the test binary (`make e2e` builds them).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test binary path: {e}"));
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap_or_else(|| panic!("target dir"));
    let path = profile_dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --bins` (make e2e does)", path.display());
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("free port: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("free port: {e}"))
}

impl OperatorProcess {
    /// Starts an operator that watches `namespace` and competes for Lease `lease` there.
    pub async fn start(namespace: &str, lease: &str, identity: &str) -> Self {
        Self::start_with(namespace, lease, identity, &[]).await
    }

    /// Like [`Self::start`], with extra command-line arguments.
    pub async fn start_with(namespace: &str, lease: &str, identity: &str, extra: &[&str]) -> Self {
        let operator = Self::spawn(namespace, lease, identity, extra, &[]);
        operator.wait_ready().await;
        operator
    }

    /// Starts the process like [`Self::start_with`], plus environment variables (e.g. a
    /// `KUBECONFIG` with another identity), without waiting for it to become ready.
    pub fn spawn(namespace: &str, lease: &str, identity: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec!["--namespace", namespace, "--lease-namespace", namespace, "--lease-name", lease];
        args.extend(["--identity", identity, "--not-ready-requeue-seconds", "2"]);
        args.extend(extra);
        let mut envs = vec![("RUST_LOG", "info,kube=warn")];
        envs.extend(env);
        Self::launch(&binary("pice-operator"), &args, &envs)
    }

    /// Starts `program` as deployed: watching all namespaces with the production defaults, its
    /// Lease `lease` in `lease_namespace`; `env` as for [`Self::spawn`]. Does not wait.
    pub fn spawn_cluster_wide(
        program: &Path,
        lease_namespace: &str,
        lease: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let args = ["--lease-namespace", lease_namespace, "--lease-name", lease, "--identity", lease];
        Self::launch(program, &args, env)
    }

    /// Runs `program ARGS --metrics-listen <free port>` with `env`, logging to a temp file.
    fn launch(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let log = dir.path().join("operator.log");
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
        let metrics_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(program)
            .args(args)
            .args(["--metrics-listen", &metrics_addr.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Self { child, metrics_addr, log, _dir: dir }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until the process answers `/readyz` (it reached the API server and joined the
    /// leader election).
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.metrics_addr);
        poll::until("the operator's /readyz", Duration::from_secs(30), || async {
            let ok = reqwest::get(&url).await.ok()?.status().is_success();
            ok.then_some(())
        })
        .await;
    }

    /// The value of one sample of `/metrics`, e.g. `pice_operator_leader`, or `None` if absent.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let body = self.metrics().await?;
        body.lines().find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The text of `/metrics`, or `None` if it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr)).await.ok()?.text().await.ok()
    }

    /// Successful reconciliations so far.
    pub async fn reconciliations(&self) -> f64 {
        self.metric("pice_operator_reconciliations_total{result=\"ok\"}").await.unwrap_or(0.0)
    }

    /// Whether this process holds the lease.
    pub async fn is_leader(&self) -> bool {
        self.metric("pice_operator_leader").await == Some(1.0)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        match status {
            Ok(Ok(status)) => assert!(status.success(), "operator exited with {status}:\n{}", self.log()),
            _ => panic!("operator did not stop within 20 s:\n{}", self.log()),
        }
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
