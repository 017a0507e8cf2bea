//! The Helm chart `charts/pice/` as a user drives it with `helm`, and copies of it to change.

use std::path::{Path, PathBuf};

use crate::kubectl::{self, Output};

/// Release name the tests install the chart as (one release per test namespace).
pub const RELEASE: &str = "pice";

/// The chart in the repository.
pub fn chart() -> PathBuf {
    crate::repo_root().join("charts/pice")
}

/// Runs `helm ARGS`.
pub async fn run(args: &[&str]) -> Output {
    kubectl::exec("helm", args, None).await
}

/// Runs `helm ARGS` and panics with its output unless it succeeds; returns stdout.
pub async fn ok(args: &[&str]) -> String {
    let out = run(args).await;
    assert!(out.success, "helm {} failed:\n{}\n{}", args.join(" "), out.stdout, out.stderr);
    out.stdout
}

/// `helm install RELEASE CHART -n NAMESPACE EXTRA...`.
pub async fn install(namespace: &str, chart: &Path, extra: &[&str]) -> String {
    let chart = chart.to_string_lossy();
    ok(&[&["install", RELEASE, &chart, "-n", namespace], extra].concat()).await
}

/// `helm uninstall RELEASE -n NAMESPACE --wait`.
pub async fn uninstall(namespace: &str) {
    ok(&["uninstall", RELEASE, "-n", namespace, "--wait"]).await;
}

/// Updates the CRDs from `chart`, the step README.md asks for before `helm upgrade` (Helm
/// installs `crds/` only when they are missing and never upgrades them):
/// `helm show crds CHART | kubectl apply --server-side --force-conflicts -f -`.
pub async fn apply_crds(chart: &Path) {
    let crds = ok(&["show", "crds", &chart.to_string_lossy()]).await;
    kubectl::ok(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(&crds)).await;
}

/// Copies the chart into `dir` (following its links into `deploy/`, so the copy stands alone)
/// and returns the copy's path, for tests that change a file of the chart.
pub fn copy_chart(dir: &Path) -> PathBuf {
    let copy = dir.join("pice");
    copy_following_links(&chart(), &copy);
    copy
}

fn copy_following_links(from: &Path, to: &Path) {
    let fail =
        |what: &str, e: std::io::Error| -> ! { panic!("{what} {} -> {}: {e}", from.display(), to.display()) };
    if std::fs::metadata(from).unwrap_or_else(|e| fail("reading", e)).is_dir() {
        std::fs::create_dir_all(to).unwrap_or_else(|e| fail("creating", e));
        for entry in std::fs::read_dir(from).unwrap_or_else(|e| fail("listing", e)) {
            let name = entry.unwrap_or_else(|e| fail("listing", e)).file_name();
            copy_following_links(&from.join(&name), &to.join(&name));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| fail("copying", e));
    }
}

/// The objects `helm template` renders from `chart` for namespace `pice-system` with `extra`
/// arguments, as JSON values.
pub async fn template(chart: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart.to_string_lossy();
    let text = ok(&[&["template", RELEASE, &chart, "-n", "pice-system"], extra].concat()).await;
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parsing helm template output: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}
