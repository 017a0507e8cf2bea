//! The operator as a process: at rest it sends the API server nothing but Lease renewals,
//! restarts that change nothing write nothing, and leader election lets exactly one replica
//! reconcile, with the standby taking over when the leader stops.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::ListParams;
use pice_api::InferencePool;
use pice_tests::apiserver::AuditLog;
use pice_tests::namespace::TestNamespace;
use pice_tests::operator::OperatorProcess;
use pice_tests::{example_pool, kubectl, poll, pools};
use serde_json::json;

/// resourceVersion of the pool and of every child, keyed by kind and name.
async fn versions(ns: &TestNamespace) -> BTreeMap<String, String> {
    async fn of<K>(ns: &TestNamespace, into: &mut BTreeMap<String, String>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let params = ListParams::default().labels("pice.dev/pool=assistant");
        for o in ns.api::<K>().list_metadata(&params).await.unwrap_or_else(|e| panic!("{e}")).items {
            into.insert(
                format!("{}/{}", K::kind(&()), o.name_any()),
                o.resource_version().unwrap_or_default(),
            );
        }
    }
    let mut all = BTreeMap::new();
    of::<Deployment>(ns, &mut all).await;
    of::<Service>(ns, &mut all).await;
    of::<ConfigMap>(ns, &mut all).await;
    of::<ServiceAccount>(ns, &mut all).await;
    of::<Role>(ns, &mut all).await;
    of::<RoleBinding>(ns, &mut all).await;
    of::<PodDisruptionBudget>(ns, &mut all).await;
    let pool = ns.api::<InferencePool>().get("assistant").await.unwrap_or_else(|e| panic!("{e}"));
    all.insert("InferencePool/assistant".into(), pool.resource_version().unwrap_or_default());
    all
}

/// The pool's status as pretty JSON, to show what a rewrite changed.
async fn pool_status(ns: &TestNamespace) -> String {
    let pool = ns.api::<InferencePool>().get("assistant").await.unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_string_pretty(&pool.status).unwrap_or_default()
}

/// Waits until two snapshots more than one sync period (5 s) apart agree: controllers settled.
async fn settled_versions(ns: &TestNamespace) -> BTreeMap<String, String> {
    poll::until("resourceVersions to settle", Duration::from_secs(60), || async {
        let before = versions(ns).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        (versions(ns).await == before).then_some(before)
    })
    .await
}

/// A pool with no cloud pods and edge replicas that ask for nothing, so that several fit on the
/// shared fake nodes beside the other tests' pools.
fn light_pool(name: &str) -> serde_json::Value {
    let mut pool = example_pool(name);
    pool["spec"]["cloud"] = json!({"model": "llama", "endpoint": "https://llm.example.com/v1"});
    for edge_pool in pool["spec"]["edge"]["pools"].as_array_mut().into_iter().flatten() {
        edge_pool["replicas"] = json!({"min": 1, "max": 1});
        for model in edge_pool["models"].as_array_mut().into_iter().flatten() {
            model.as_object_mut().map(|m| m.remove("resources"));
        }
    }
    pool
}

#[tokio::test]
async fn at_rest_the_operator_sends_nothing_but_lease_renewals() {
    const POOLS: [&str; 3] = ["rest-a", "rest-b", "rest-c"];
    const WINDOW: Duration = Duration::from_secs(30);
    kubectl::apply_crds().await;
    TestNamespace::run("at-rest", |ns| async move {
        // Resync every 5 s and the autoscaler every second: both run many times in the window.
        let identity = format!("at-rest-{}", ns.name);
        let flags = ["--resync-seconds", "5", "--sync-period-seconds", "1"];
        let operator = OperatorProcess::start_with(&ns.name, "pice-operator", &identity, &flags).await;
        for name in POOLS {
            pools::apply(&ns, &light_pool(name)).await;
        }
        for name in POOLS {
            pools::wait_condition(&ns, name, "Ready", "True").await;
        }
        settled_pools(&ns).await;

        let from = jiff::Timestamp::now();
        tokio::time::sleep(WINDOW).await;
        let to = jiff::Timestamp::now();
        tokio::time::sleep(Duration::from_secs(3)).await; // the audit log is written in batches
        let agent = format!("pice-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
        let requests = AuditLog::of_cluster().requests_of_agent(&agent, from, to);
        let sent: Vec<_> = requests
            .iter()
            .filter(|((verb, resource), _)| verb != "watch" && resource != "leases")
            .collect();
        let total: u64 = sent.iter().map(|(_, n)| **n).sum();
        // The target is at most one request per pool per minute; nothing is expected.
        let bound = POOLS.len() as u64 * WINDOW.as_secs() / 60;
        eprintln!("at rest for {WINDOW:?} with {} pools: {total} non-watch requests besides Leases", POOLS.len());
        assert!(
            total <= bound,
            "at rest for {WINDOW:?} with {} pools the operator sent {total} requests (bound {bound}): {sent:?}\noperator log:\n{}",
            POOLS.len(),
            operator.log()
        );
        // The count does see this operator: its Lease renewals are in the window.
        let renewals = requests.get(&("patch".to_string(), "leases".to_string())).copied().unwrap_or(0);
        assert!(renewals > 0, "no Lease renewal of {agent} in the audit log: {requests:?}");
    })
    .await;
}

/// Waits until the resourceVersions of the namespace's pools stop changing for 6 s.
async fn settled_pools(ns: &TestNamespace) {
    let snapshot = || async {
        let pools = ns.api::<InferencePool>().list_metadata(&ListParams::default()).await;
        let pools = pools.unwrap_or_else(|e| panic!("{e}")).items;
        pools
            .iter()
            .map(|p| (p.name_any(), p.resource_version().unwrap_or_default()))
            .collect::<BTreeMap<_, _>>()
    };
    poll::until("the pools' status to settle", Duration::from_secs(60), || async {
        let before = snapshot().await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        (snapshot().await == before).then_some(())
    })
    .await;
}

#[tokio::test]
async fn restarting_the_operator_with_nothing_changed_writes_nothing() {
    kubectl::apply_crds().await;
    TestNamespace::run("restart", |ns| async move {
        let first = OperatorProcess::start(&ns.name, "pice-operator", "first").await;
        pools::apply(&ns, &example_pool("assistant")).await;
        pools::wait_condition(&ns, "assistant", "Ready", "True").await;
        let before = settled_versions(&ns).await;
        assert!(before.len() >= 15, "pool and children snapshot: {before:?}");
        let status_before = pool_status(&ns).await;
        first.stop().await;

        let second = OperatorProcess::start(&ns.name, "pice-operator", "second").await;
        poll::until("the new operator to reconcile", Duration::from_secs(60), || async {
            (second.reconciliations().await >= 1.0).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = versions(&ns).await;
        let changed: Vec<_> =
            before.iter().filter(|(k, v)| after.get(*k) != Some(v)).map(|(k, _)| k).collect();
        assert!(
            changed.is_empty(),
            "restart rewrote {changed:?}\npool status before:\n{status_before}\nafter:\n{}\noperator log:\n{}",
            pool_status(&ns).await,
            second.log()
        );
    })
    .await;
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_the_standby_takes_over_when_it_stops() {
    kubectl::apply_crds().await;
    TestNamespace::run("leader", |ns| async move {
        let a = OperatorProcess::start(&ns.name, "pice-operator", "replica-a").await;
        let b = OperatorProcess::start(&ns.name, "pice-operator", "replica-b").await;
        let a_leads = poll::until("exactly one leader", Duration::from_secs(30), || async {
            match (a.is_leader().await, b.is_leader().await) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            }
        })
        .await;
        let (leader, standby) = if a_leads { (a, b) } else { (b, a) };
        pools::apply(&ns, &example_pool("assistant")).await;
        pools::wait_condition(&ns, "assistant", "Ready", "True").await;
        assert!(leader.reconciliations().await >= 1.0);
        assert_eq!(standby.reconciliations().await, 0.0, "the standby must not reconcile");
        assert!(!standby.is_leader().await);

        leader.stop().await;
        poll::until("the standby to take the lease", Duration::from_secs(45), || async {
            standby.is_leader().await.then_some(())
        })
        .await;
        pools::patch(&ns, "assistant", &json!({"spec": {"gateway": {"replicas": 3}}})).await;
        let deployments = ns.api::<Deployment>();
        poll::until("the new leader to scale the gateway", Duration::from_secs(60), || async {
            let d = deployments.get("assistant-gateway").await.ok()?;
            (d.spec?.replicas == Some(3)).then_some(())
        })
        .await;
        assert!(standby.reconciliations().await >= 1.0);
    })
    .await;
}
