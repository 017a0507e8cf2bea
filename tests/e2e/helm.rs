//! The Helm chart `charts/pice/` as users install it: lint and render, bad values refused by the
//! schema, install → example pool → uninstall, the CRD upgrade step, every switch on in a
//! namespace that enforces the restricted Pod Security Standard, and the chart's RBAC proven by
//! running the real operator with a token of the chart's ServiceAccount, with each rule and
//! without it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use pice_operator::run::Args;
use pice_tests::helm::{self, RELEASE};
use pice_tests::namespace::TestNamespace;
use pice_tests::operator::OperatorProcess;
use pice_tests::{example_pool, kubectl, monitoring, pools, repo_root, service_account};
use serde_json::{Value, json};
use tokio::sync::RwLock;

/// Every optional switch of the chart on.
const ALL_SWITCHES: &[&str] = &[
    "--set",
    concat!(
        "serviceMonitor.enabled=true,prometheusRule.enabled=true,",
        "grafanaDashboard.enabled=true,networkPolicy.enabled=true"
    ),
];
/// The chart's default Lease name, which the operator processes below compete for.
const LEASE: &str = "pice-operator";

/// The CRD is cluster-wide and Helm 4's `helm install` applies `crds/` server-side, which
/// conflicts with a CRD that another field manager changed. So the test that changes the CRD
/// holds this lock exclusively, and every test that runs `helm install` holds it shared.
static CRD: RwLock<()> = RwLock::const_new(());

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("parsing YAML: {e}\n{text}"))
}

/// The chart's rules file: `{cluster: [...], leaderElection: [...]}`.
fn rules_file() -> Value {
    yaml(&read(&helm::chart().join("files/operator-rules.yaml")))
}

/// The only rendered object of `kind`.
fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, rendered {}", found.len());
    found[0]
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[tokio::test]
async fn the_chart_passes_helm_lint_strict_with_every_switch_off_and_on() {
    let chart = helm::chart();
    let chart = chart.to_string_lossy();
    helm::ok(&["lint", "--strict", &chart]).await;
    helm::ok(&[&["lint", "--strict", &chart], ALL_SWITCHES].concat()).await;
}

#[tokio::test]
async fn helm_template_renders_a_restricted_leader_elected_operator_whose_flags_the_operator_accepts() {
    let set = "images.operator.tag=1.2.3,images.gateway.repository=registry.example/gw,\
               images.edgeAgent.tag=9.9.9,watchNamespace=llm,leaderElection.leaseName=lead";
    // `--set` leaves fractions as strings; `--set-json` (or a values file) gives numbers.
    let autoscaling = r#"autoscaling={"syncPeriodSeconds": 2.5, "tolerance": 0.2}"#;
    let objects = helm::template(&helm::chart(), &["--set", set, "--set-json", autoscaling]).await;
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    let expected = ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service"];
    assert_eq!(kinds, expected.into_iter().chain(["ServiceAccount"]).collect());

    let pod = &one(&objects, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/pice-dev/pice-operator:1.2.3");
    assert_eq!(pod["serviceAccountName"], "pice");
    // The arguments, with the downward-API variables the kubelet substitutes, parse as the
    // operator's own command line and mean what the values said.
    let argv = strings(&container["args"])
        .into_iter()
        .map(|a| a.replace("$(POD_NAMESPACE)", "pice-system").replace("$(POD_NAME)", "pice-0"));
    let args = Args::try_parse_from(std::iter::once("pice-operator".to_owned()).chain(argv))
        .unwrap_or_else(|e| panic!("the chart's arguments are not the operator's command line: {e}"));
    let op = &args.operator;
    assert_eq!((op.lease_namespace.as_str(), op.lease_name.as_str()), ("pice-system", "lead"));
    assert_eq!((op.identity.as_deref(), op.namespace.as_deref()), (Some("pice-0"), Some("llm")));
    assert_eq!(op.gateway_image, "registry.example/gw:0.1.0");
    assert_eq!(op.edge_agent_image, "ghcr.io/pice-dev/pice-edge-agent:9.9.9");
    assert_eq!(op.metrics_listen.port(), 8080);
    assert_eq!((op.sync_period_seconds, op.scale_tolerance), (2.5, 0.2));
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?, e["valueFrom"]["fieldRef"]["fieldPath"].as_str()?)))
        .collect();
    assert_eq!(env, [("POD_NAMESPACE", "metadata.namespace"), ("POD_NAME", "metadata.name")]);

    assert_eq!(container["ports"][0], json!({"name": "metrics", "containerPort": 8080, "protocol": "TCP"}));
    assert_eq!(container["livenessProbe"]["httpGet"], json!({"path": "/healthz", "port": "metrics"}));
    assert_eq!(container["readinessProbe"]["httpGet"], json!({"path": "/readyz", "port": "metrics"}));
    assert!(
        container["resources"]["requests"]["cpu"].is_string()
            && container["resources"]["limits"]["memory"].is_string()
    );
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    // RBAC: exactly the rules file; the Lease rules name the configured Lease.
    let rules = rules_file();
    assert_eq!(one(&objects, "ClusterRole")["rules"], rules["cluster"]);
    let lease_rules = serde_json::to_string(&rules["leaderElection"]).unwrap_or_default();
    let lease_rules: Value =
        serde_json::from_str(&lease_rules.replace("{{ .Values.leaderElection.leaseName }}", "lead"))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one(&objects, "Role")["rules"], lease_rules);
    let subject = json!([{"kind": "ServiceAccount", "name": "pice", "namespace": "pice-system"}]);
    assert_eq!(one(&objects, "ClusterRoleBinding")["subjects"], subject);
    assert_eq!(one(&objects, "RoleBinding")["subjects"], subject);
}

#[tokio::test]
async fn invalid_values_are_refused_at_install_time_with_a_message_naming_the_value() {
    let _crd = CRD.read().await;
    TestNamespace::run("helm-values", |ns| async move {
        let cases = [
            ("--set", "replicaCount=0", "at '/replicaCount': minimum: got 0, want 1"),
            ("--set", "logging.format=xml", "at '/logging/format': value must be one of 'text', 'json'"),
            ("--set", "serviceMonitor.enabled=yes", "at '/serviceMonitor/enabled': got string, want boolean"),
            ("--set", "replicas=2", "additional properties 'replicas' not allowed"),
            ("--set", "images.operator.tag=v1:bad", "at '/images/operator/tag': 'v1:bad' does not match"),
            ("--set", "watchNamespace=Not_A_Namespace", "at '/watchNamespace': 'Not_A_Namespace' does not"),
            ("--set", "metrics.port=70000", "at '/metrics/port': maximum: got 70,000, want 65,535"),
            (
                "--set-json",
                "autoscaling.tolerance=1",
                "at '/autoscaling/tolerance': exclusiveMaximum: got 1, want 1",
            ),
        ];
        let chart = helm::chart();
        for (flag, value, message) in cases {
            let out =
                helm::run(&["install", RELEASE, &chart.to_string_lossy(), "-n", &ns.name, flag, value]).await;
            assert!(!out.success, "helm install {flag} {value} should fail");
            assert!(
                out.stderr.contains("values don't meet the specifications of the schema")
                    && out.stderr.contains(message),
                "helm install {flag} {value}: expected a schema error with {message:?}, got:\n{}",
                out.stderr
            );
        }
        // Refused before anything reached the cluster: no release record (a Secret), no object.
        let kinds = "deployments,serviceaccounts,secrets";
        let objects = kubectl::ok(&["get", kinds, "-n", &ns.name, "-o", "name"], None).await;
        assert_eq!(objects.trim(), "serviceaccount/default", "refused installs created objects");
    })
    .await;
}

/// What `helm uninstall` removes: the release's own objects, namespaced and cluster-scoped.
async fn chart_objects(ns: &str) -> Vec<String> {
    let (cluster_role, cluster_binding) =
        (format!("clusterrole/pice-{ns}"), format!("clusterrolebinding/pice-{ns}"));
    let names = [
        cluster_role.as_str(),
        &cluster_binding,
        "deployment/pice",
        "serviceaccount/pice",
        "service/pice-metrics",
        "role/pice-leader-election",
        "rolebinding/pice-leader-election",
    ];
    let out =
        kubectl::ok(&[&["get", "-n", ns, "--ignore-not-found", "-o", "name"], &names[..]].concat(), None)
            .await;
    out.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_pool_is_reconciled_with_only_the_charts_permissions_and_outlives_helm_uninstall() {
    let _crd = CRD.read().await;
    TestNamespace::run("helm-install", |ns| async move {
        helm::install(&ns.name, &helm::chart(), &["--wait", "--timeout", "90s"]).await;
        assert_eq!(chart_objects(&ns.name).await.len(), 7, "the chart's objects after install");
        let example = repo_root().join("deploy/examples/assistant.yaml");
        kubectl::ok(&["apply", "-n", &ns.name, "-f", &example.to_string_lossy()], None).await;

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let operator = operator_as_the_charts_service_account(&ns.name, dir.path()).await;
        operator.wait_ready().await;
        pools::wait_condition(&ns, "assistant", "Ready", "True").await;
        for name in apply_other_examples(&ns).await {
            pools::wait_condition(&ns, &name, "Ready", "True").await;
        }
        assert!(!operator.log().to_lowercase().contains("forbidden"), "operator log:\n{}", operator.log());
        operator.stop().await;

        // Uninstall removes the operator and its permissions; the CRD (Helm never deletes crds/),
        // the pool and the workloads the operator made for it stay and keep serving.
        helm::uninstall(&ns.name).await;
        let left = chart_objects(&ns.name).await;
        assert!(left.is_empty(), "helm uninstall left chart objects: {left:?}");
        kubectl::ok(&["get", "crd", "inferencepools.pice.dev"], None).await;
        kubectl::ok(&["get", "inferencepool/assistant", "-n", &ns.name], None).await;
        let children = pools::labelled::<Deployment>(&ns, "assistant").await;
        assert!(
            children.contains(&"assistant-gateway".to_owned()),
            "pool workloads after uninstall: {children:?}"
        );
    })
    .await;
}

/// Applies every other pool of `deploy/examples/` with `kubectl apply`, each named after its
/// file (two examples share the name `assistant`), and returns their names.
async fn apply_other_examples(ns: &TestNamespace) -> Vec<String> {
    let dir = repo_root().join("deploy/examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if path.extension().is_none_or(|e| e != "yaml") || name == "assistant" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut pool: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        pool["metadata"]["name"] = name.clone().into();
        pools::apply(ns, &pool).await;
        names.push(name);
    }
    assert!(names.len() >= 2, "examples besides assistant.yaml: {names:?}");
    names
}

/// Starts the operator with a token of the chart's ServiceAccount in `namespace`, as the chart's
/// Deployment runs it (the fake pods of the test cluster run no containers). Does not wait for it
/// to become ready.
async fn operator_as_the_charts_service_account(namespace: &str, dir: &Path) -> OperatorProcess {
    let kubeconfig = service_account::kubeconfig(namespace, RELEASE, dir).await;
    let kubeconfig = kubeconfig.to_string_lossy();
    OperatorProcess::spawn(namespace, LEASE, "chart-service-account", &[], &[("KUBECONFIG", &kubeconfig)])
}

/// A rule of the rules file, by section and index.
struct Rule {
    section: &'static str,
    index: usize,
    text: String,
}

fn every_rule() -> Vec<Rule> {
    let rules = rules_file();
    let mut all = Vec::new();
    for section in ["cluster", "leaderElection"] {
        for (index, rule) in rules[section].as_array().into_iter().flatten().enumerate() {
            all.push(Rule { section, index, text: rule.to_string() });
        }
    }
    all
}

/// The example pool without resource requests: the scenarios run at once and must not compete
/// for the fake nodes' capacity, which is beside the point here.
fn pool_without_requests() -> Value {
    let mut pool = example_pool("assistant");
    if let Some(cloud) = pool["spec"]["cloud"].as_object_mut() {
        cloud.remove("resources");
    }
    for edge_pool in pool["spec"]["edge"]["pools"].as_array_mut().into_iter().flatten() {
        for model in edge_pool["models"].as_array_mut().into_iter().flatten() {
            model.as_object_mut().map(|m| m.remove("resources"));
        }
    }
    pool
}

/// Installs a copy of the chart without `rule`, runs the operator with the chart's
/// ServiceAccount, applies a pool, and waits until the operator reports a Forbidden answer.
async fn operator_is_forbidden_without(rule: Rule) {
    TestNamespace::run("helm-rbac", |ns| async move {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let chart = helm::copy_chart(dir.path());
        let mut rules = rules_file();
        if let Some(list) = rules[rule.section].as_array_mut() {
            list.remove(rule.index);
        }
        // JSON is YAML; the chart renders the file through `tpl`, which leaves JSON alone.
        std::fs::write(chart.join("files/operator-rules.yaml"), rules.to_string())
            .unwrap_or_else(|e| panic!("writing the rules: {e}"));
        helm::install(&ns.name, &chart, &[]).await;
        let operator = operator_as_the_charts_service_account(&ns.name, dir.path()).await;
        pools::apply(&ns, &pool_without_requests()).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !operator.log().to_lowercase().contains("forbidden") {
            assert!(
                Instant::now() < deadline,
                "without {}[{}] {} the operator was forbidden nothing in 60 s: is the rule needed?\n\
                 operator log:\n{}",
                rule.section,
                rule.index,
                rule.text,
                operator.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        drop(operator);
        helm::uninstall(&ns.name).await;
    })
    .await;
}

#[tokio::test]
async fn without_any_one_rule_of_the_chart_the_operator_is_forbidden_something() {
    let _crd = CRD.read().await;
    let rules = every_rule();
    assert!(
        rules.len() >= 10,
        "rules file: {rules:?}",
        rules = rules.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    // A few at a time: each scenario is a release, an operator process and a pool.
    futures::stream::iter(rules.into_iter().map(operator_is_forbidden_without))
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

fn crd_column_description() -> Vec<&'static str> {
    vec![
        "get",
        "crd",
        "inferencepools.pice.dev",
        "-o",
        "jsonpath={.spec.versions[0].additionalPrinterColumns[0].description}",
    ]
}

#[tokio::test]
async fn helm_upgrade_after_the_documented_crd_step_updates_a_changed_crd() {
    let _crd = CRD.write().await;
    TestNamespace::run("helm-upgrade", |ns| async move {
        let original = helm::chart();
        helm::apply_crds(&original).await;
        helm::install(&ns.name, &original, &[]).await;
        let before = kubectl::ok(&crd_column_description(), None).await;
        assert_eq!(before, "Routing mode");

        // A new chart version whose CRD changed (here: a printer column's description).
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let changed = helm::copy_chart(dir.path());
        let crd_file = changed.join("crds/inferencepool.yaml");
        let text = read(&crd_file);
        assert_eq!(text.matches("description: Routing mode\n").count(), 1, "the column to change");
        let text = text.replace(
            "description: Routing mode\n",
            "description: Routing mode (auto, progressive or cloud)\n",
        );
        std::fs::write(&crd_file, text).unwrap_or_else(|e| panic!("writing the CRD: {e}"));
        let changed_str = changed.to_string_lossy();

        // Helm alone leaves the CRD as it was: it never upgrades crds/.
        helm::ok(&["upgrade", RELEASE, &changed_str, "-n", &ns.name]).await;
        assert_eq!(kubectl::ok(&crd_column_description(), None).await, "Routing mode");

        // The documented upgrade: apply the chart's CRDs, then helm upgrade.
        helm::apply_crds(&changed).await;
        helm::ok(&["upgrade", RELEASE, &changed_str, "-n", &ns.name]).await;
        let after = kubectl::ok(&crd_column_description(), None).await;
        assert_eq!(after, "Routing mode (auto, progressive or cloud)");

        // Back to the repository's CRD for the other tests, the same way.
        helm::apply_crds(&original).await;
        assert_eq!(kubectl::ok(&crd_column_description(), None).await, "Routing mode");
        helm::uninstall(&ns.name).await;
    })
    .await;
}

/// An object of the namespace as JSON.
async fn object(ns: &TestNamespace, name: &str) -> Value {
    let text = kubectl::ok(&["get", name, "-n", &ns.name, "-o", "json"], None).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

#[tokio::test]
async fn with_every_switch_on_the_chart_installs_in_a_restricted_namespace_and_ships_deploy_files() {
    monitoring::install_crds().await;
    let _crd = CRD.read().await;
    TestNamespace::run("helm-switches", |ns| async move {
        // Pods that break the restricted Pod Security Standard are refused here, so --wait fails.
        let label = "pod-security.kubernetes.io/enforce=restricted";
        kubectl::ok(&["label", "namespace", &ns.name, label], None).await;
        helm::install(&ns.name, &helm::chart(), &[ALL_SWITCHES, &["--wait", "--timeout", "90s"]].concat())
            .await;

        let rules = yaml(&read(&repo_root().join("deploy/prometheus/rules.yaml")));
        let rule = object(&ns, "prometheusrule/pice").await;
        assert_eq!(rule["spec"]["groups"], rules["groups"], "PrometheusRule vs deploy/prometheus/rules.yaml");

        let dashboards = object(&ns, "configmap/pice-dashboards").await;
        assert_eq!(dashboards["metadata"]["labels"]["grafana_dashboard"], "1");
        let shipped = dashboards["data"].as_object().cloned().unwrap_or_default();
        let dir = repo_root().join("deploy/grafana");
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).flatten().collect();
        assert!(
            !files.is_empty() && files.len() == shipped.len(),
            "dashboards shipped: {:?}",
            shipped.keys()
        );
        for file in files {
            let name = file.file_name().to_string_lossy().into_owned();
            assert_eq!(
                shipped.get(&name).and_then(Value::as_str),
                Some(read(&file.path()).as_str()),
                "{name}"
            );
        }

        // The ServiceMonitor's selector picks the metrics Service, whose port the pod serves.
        let monitor = object(&ns, "servicemonitor/pice").await;
        let selector = monitor["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
        let selector: Vec<String> =
            selector.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
        let services =
            kubectl::ok(&["get", "services", "-n", &ns.name, "-l", &selector.join(","), "-o", "name"], None)
                .await;
        assert_eq!(services.trim(), "service/pice-metrics");
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
        let policy = object(&ns, "networkpolicy/pice").await;
        assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
        helm::uninstall(&ns.name).await;
    })
    .await;
}

#[tokio::test]
async fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    assert!(
        std::process::Command::new("promtool").arg("--version").output().is_ok(),
        "promtool is missing: install Debian's `prometheus` package (.ci/run does)"
    );
    let dir = repo_root().join("deploy/prometheus");
    let (rules, tests) = (dir.join("rules.yaml"), dir.join("rules_test.yaml"));
    for (command, file) in [("check", rules), ("test", tests)] {
        let args = [command, "rules", &file.to_string_lossy()];
        let out = kubectl::exec("promtool", &args, None).await;
        assert!(out.success, "promtool {}:\n{}{}", args.join(" "), out.stdout, out.stderr);
    }
}
