//! The shipped Grafana dashboard and Prometheus alert rules against a real Prometheus scraping a
//! running system: the operator reconciling the example pool, real edge agents (simulator
//! backend) at its pods' IPs, and a gateway with a simulated cloud under chat traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pice_tests::agents::AgentFleet;
use pice_tests::gateway::{GatewayStack, traffic};
use pice_tests::namespace::TestNamespace;
use pice_tests::operator::OperatorProcess;
use pice_tests::prometheus::Prometheus;
use pice_tests::{example_pool, kubectl, poll, pools, promql, repo_root};
use serde_json::Value;

/// Edge pods of the example pool (both edge pools).
const EDGE_PODS: &str = "pice.dev/pool=assistant,pice.dev/edge-pool";

/// Every panel query of the dashboards, as (where, expression with Grafana's variables set to
/// match everything).
fn dashboard_queries() -> Vec<(String, String)> {
    let dir = repo_root().join("deploy/grafana");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut queries = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dashboard: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr =
                    target["expr"].as_str().unwrap_or_else(|| panic!("a target without expr: {target}"));
                let expr =
                    expr.replace("$__rate_interval", "1m").replace("$namespace", ".*").replace("$pool", ".*");
                queries.push((format!("{} panel {:?}", file.display(), panel["title"]), expr));
            }
        }
    }
    queries
}

/// Every alert of `deploy/prometheus/rules.yaml`, as (alert name, expression).
fn alert_rules() -> Vec<(String, String)> {
    let file = repo_root().join("deploy/prometheus/rules.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let rules: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let groups = rules["groups"].as_array().into_iter().flatten();
    let rules = groups.flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default());
    rules
        .map(|rule| {
            (rule["alert"].as_str().unwrap_or("").to_owned(), rule["expr"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

/// The metric families a process declares on `/metrics` (`# TYPE name type`), with their type.
async fn declared_families(metrics_url: &str) -> BTreeMap<String, String> {
    let body = reqwest::get(metrics_url).await.and_then(|r| r.error_for_status());
    let text = body.unwrap_or_else(|e| panic!("{metrics_url}: {e}")).text().await.unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// Whether `name` (as written in a query) is a sample of one of the `families`.
fn is_declared(name: &str, families: &BTreeMap<String, String>) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).and_then(|base| families.get(base)).is_some_and(|t| t == "histogram")
        })
}

/// Why `expr` fails: no data, or a label it groups by (other than `le`) on none of its series.
async fn problem(prometheus: &Prometheus, expr: &str) -> Option<String> {
    let result = match prometheus.query(expr).await {
        Ok(result) if result.is_empty() => return Some("no data".into()),
        Ok(result) => result,
        Err(error) => return Some(error),
    };
    let labels: BTreeSet<&str> = result
        .iter()
        .filter_map(|series| series["metric"].as_object())
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    let missing: Vec<String> = promql::grouping_labels(expr)
        .into_iter()
        .filter(|l| l != "le" && !labels.contains(l.as_str()))
        .collect();
    (!missing.is_empty()).then(|| format!("no series carries {missing:?}"))
}

/// The queries that fail, each with its place and why.
async fn failing_queries(prometheus: &Prometheus, queries: &[(String, String)]) -> Vec<String> {
    let mut failing = Vec::new();
    for (place, expr) in queries {
        if let Some(problem) = problem(prometheus, expr).await {
            failing.push(format!("{place}: {expr}\n    {problem}"));
        }
    }
    failing
}

/// Each dashboard query and each alert expression must return series, and each label it groups
/// by must be on them. An alert's comparisons are made `bool` (see [`promql::with_bool`]): a
/// healthy system fires none, and the point is that the expression reads real series.
#[tokio::test]
async fn every_dashboard_panel_and_alert_reads_metrics_that_a_running_system_exports() {
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .chain(
            alert_rules()
                .into_iter()
                .map(|(alert, expr)| (format!("alert {alert}"), promql::with_bool(&expr))),
        )
        .collect();
    assert!(queries.len() > 20, "the dashboards and rules were read: {queries:?}");

    TestNamespace::run("monitoring", |ns| async move {
        kubectl::apply_crds().await;
        // A quota that forbids Deployments makes the first reconciles fail to apply, so that
        // pice_operator_reconcile_errors_total (a counter with a label, exported only once an
        // error happened) has data; lifted once one error is counted.
        let quota = format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: no-deployments, namespace: {}}}\nspec: {{hard: {{count/deployments.apps: \"0\"}}}}\n",
            ns.name
        );
        kubectl::ok(&["apply", "-f", "-"], Some(&quota)).await;
        let operator = OperatorProcess::start_with(&ns.name, "pice-operator", "e2e", &["--sync-period-seconds", "1"]).await;
        pools::apply(&ns, &example_pool("assistant")).await;
        let applied = Instant::now();
        poll::until("a reconcile error counted", Duration::from_secs(30), || async {
            operator.metric("pice_operator_reconcile_errors_total{category=\"apply\"}").await
        })
        .await;
        kubectl::ok(&["delete", "resourcequota", "no-deployments", "-n", &ns.name], None).await;

        let fleet = AgentFleet::follow(&ns, EDGE_PODS);
        let agents = poll::until("agents at the 3 edge pods", Duration::from_secs(60), || async {
            let ips = fleet.ips().await;
            (ips.len() == 3).then_some(ips)
        })
        .await;
        // Admission sends a request's points to the edge only when it expects them within the
        // deadline, so points rarely fall back on their own: once the edge has expanded some,
        // one agent dies while it serves, and the points it held or is sent before the gateway
        // notices fall back (pice_gateway_fallbacks_total is exported once a fallback happened).
        let edges: Vec<String> = agents.iter().map(|ip| format!("{ip}:50051")).collect();
        let gateway = GatewayStack::start("assistant", &edges, 5000).await;
        let requests = traffic(&gateway.url, 6);
        let metrics_url = format!("{}/metrics", gateway.url);
        poll::until("points expanded on the edge", Duration::from_secs(30), || async {
            let text = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
            text.contains("pice_gateway_expansion_duration_seconds_count").then_some(())
        })
        .await;
        let dying = agents.last().unwrap_or_else(|| unreachable!("three agents"));
        fleet.kill(dying).await;

        let prometheus = Prometheus::start("all").await;
        prometheus.scrape(&agents.iter().map(|ip| format!("{ip}:9090")).collect::<Vec<_>>());
        let gateway_addr = gateway.url.trim_start_matches("http://").to_owned();
        prometheus.scrape_services(&[operator.metrics_addr.to_string(), gateway_addr]);

        // Prometheus needs a few scrapes before rates have two samples: poll until every
        // expression has data, then report the ones that still have none.
        let deadline = Instant::now() + Duration::from_secs(60);
        let failing = loop {
            let failing = failing_queries(&prometheus, &queries).await;
            if failing.is_empty() || Instant::now() > deadline {
                break failing;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let mut families = declared_families(&format!("http://{}/metrics", operator.metrics_addr)).await;
        families.extend(declared_families(&format!("{}/metrics", gateway.url)).await);
        families.extend(declared_families(&format!("http://{}:9090/metrics", agents[0])).await);
        let undeclared: Vec<String> = shipped_metric_names().into_iter().filter(|n| !is_declared(n, &families)).collect();
        assert!(
            failing.is_empty() && undeclared.is_empty(),
            "expressions without data:\n{}\nnamed in deploy/ but exported by no process: {undeclared:?}",
            failing.join("\n")
        );
        eprintln!("every expression has data {:?} after the pool was applied", applied.elapsed());
        requests.stop();
        prometheus.stop().await;
        fleet.stop().await;
        operator.stop().await;
    })
    .await;
}

/// Every `pice_*` name in the dashboards and the rules (templating queries and descriptions
/// included).
fn shipped_metric_names() -> BTreeSet<String> {
    let mut files = vec![repo_root().join("deploy/prometheus/rules.yaml")];
    let dir = repo_root().join("deploy/grafana");
    files.extend(
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path()),
    );
    files
        .iter()
        .flat_map(|file| {
            promql::metric_names(
                &std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            )
        })
        .collect()
}
