//! Runs `kubectl` the way a user does, against the cluster `KUBECONFIG` names.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What one `kubectl` call printed.
#[derive(Debug)]
pub struct Output {
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `kubectl ARGS`, feeding `stdin` when given.
pub async fn run(args: &[&str], stdin: Option<&str>) -> Output {
    exec("kubectl", args, stdin).await
}

/// Runs another command-line tool a user runs beside kubectl (`helm`, `promtool`) the same way.
pub async fn exec(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let mut input = child.stdin.take().unwrap_or_else(|| panic!("{program} stdin"));
    let text = stdin.unwrap_or_default().to_owned();
    tokio::spawn(async move {
        let _ = input.write_all(text.as_bytes()).await;
    });
    let output = child.wait_with_output().await.unwrap_or_else(|e| panic!("running {program}: {e}"));
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `kubectl ARGS` and panics with its output unless it succeeds.
pub async fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin).await;
    assert!(out.success, "kubectl {} failed:\n{}\n{}", args.join(" "), out.stdout, out.stderr);
    out.stdout
}

/// Installs the CRDs from `crds/` (idempotent, safe from parallel tests).
pub async fn apply_crds() {
    let dir = crate::repo_root().join("crds");
    let dir = dir.to_string_lossy();
    ok(&["apply", "--server-side", "--force-conflicts", "-f", &dir], None).await;
    ok(&["wait", "--for=condition=Established", "--timeout=60s", "crd/inferencepools.pice.dev"], None).await;
}
