//! Reading pools and their children back from the cluster in e2e tests.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use pice_api::InferencePool;
use serde_json::Value;

use crate::namespace::TestNamespace;
use crate::{kubectl, poll};

/// A namespaced Kubernetes kind these helpers can get and list.
pub trait Namespaced:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

/// Applies a pool (JSON) with `kubectl apply`, as a user would.
pub async fn apply(ns: &TestNamespace, pool: &Value) {
    kubectl::ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&pool.to_string())).await;
}

/// Merge-patches a pool's spec with `kubectl patch`.
pub async fn patch(ns: &TestNamespace, name: &str, patch: &Value) {
    let target = format!("inferencepool/{name}");
    kubectl::ok(&["patch", "-n", &ns.name, &target, "--type=merge", "-p", &patch.to_string()], None).await;
}

/// Waits until the pool's condition `type_` has `status`, and returns the pool.
pub async fn wait_condition(ns: &TestNamespace, name: &str, type_: &str, status: &str) -> InferencePool {
    let api = ns.api::<InferencePool>();
    let what = format!("{name} {type_}={status}");
    poll::until(&what, Duration::from_secs(90), || async {
        let pool = api.get(name).await.ok()?;
        let conditions = &pool.status.as_ref()?.conditions;
        conditions.iter().any(|c| c.type_ == type_ && c.status == status).then_some(pool)
    })
    .await
}

/// The condition `type_` of a pool, if set.
pub fn condition<'a>(
    pool: &'a InferencePool,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    pool.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// Waits for the Deployment `name` and returns it.
pub async fn deployment(ns: &TestNamespace, name: &str) -> Deployment {
    object::<Deployment>(ns, name).await
}

/// Waits (up to 60 s) for the object `name` of kind `K` and returns it.
pub async fn object<K>(ns: &TestNamespace, name: &str) -> K
where
    K: Namespaced,
{
    let api = ns.api::<K>();
    let what = format!("{} {name}", K::kind(&()));
    poll::until(&what, Duration::from_secs(60), || async { api.get(name).await.ok() }).await
}

/// Names of the objects of kind `K` labelled with pool `pool`.
pub async fn labelled<K>(ns: &TestNamespace, pool: &str) -> Vec<String>
where
    K: Namespaced,
{
    let params = ListParams::default().labels(&format!("pice.dev/pool={pool}"));
    let list = ns.api::<K>().list_metadata(&params).await.unwrap_or_else(|e| panic!("listing: {e}"));
    list.items.into_iter().filter_map(|o| o.metadata.name).collect()
}

/// Replaces the pool's spec through server-side apply as a different manager (a user's edit).
pub async fn apply_spec(ns: &TestNamespace, name: &str, spec: &Value) {
    let body = serde_json::json!({
        "apiVersion": "pice.dev/v1alpha1", "kind": "InferencePool",
        "metadata": {"name": name}, "spec": spec,
    });
    ns.api::<InferencePool>()
        .patch(name, &PatchParams::apply("e2e-user").force(), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|e| panic!("applying spec of {name}: {e}"));
}

/// Waits (up to 30 s) until the objects of kind `K` labelled with pool `pool` are exactly
/// `names` (in any order): the operator applies a pool's children one after another, so a list
/// read right after one child appeared may not hold the others yet.
pub async fn wait_labelled<K>(ns: &TestNamespace, pool: &str, names: &[&str])
where
    K: Namespaced,
{
    let mut want: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
    want.sort();
    let what = format!("{} labelled with pool {pool} to be exactly {want:?}", K::kind(&()));
    poll::until(&what, Duration::from_secs(30), || async {
        let mut seen = labelled::<K>(ns, pool).await;
        seen.sort();
        (seen == want).then_some(())
    })
    .await;
}
