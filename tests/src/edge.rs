//! Reading an edge Deployment's replicas and pods in e2e tests and benchmarks.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;

use crate::namespace::TestNamespace;
use crate::poll;

/// `spec.replicas` of a Deployment, if it exists.
pub async fn replicas(ns: &TestNamespace, deployment: &str) -> Option<i32> {
    ns.api::<Deployment>().get(deployment).await.ok()?.spec?.replicas
}

/// Waits until the Deployment asks for `want` replicas.
pub async fn wait_replicas(ns: &TestNamespace, deployment: &str, want: i32, within: Duration) {
    poll::until(&format!("{deployment} at {want} replicas"), within, || async {
        (replicas(ns, deployment).await == Some(want)).then_some(())
    })
    .await;
}

/// The IP of a pod matching `selector` that is not being deleted.
pub async fn live_pod_ip(ns: &TestNamespace, selector: &str) -> String {
    let pods = ns.api::<Pod>();
    poll::until("a live edge pod with an IP", Duration::from_secs(30), || async {
        let list = pods.list(&ListParams::default().labels(selector)).await.ok()?;
        let live = list.items.into_iter().find(|p| p.metadata.deletion_timestamp.is_none())?;
        live.status?.pod_ip
    })
    .await
}

/// Waits until exactly `count` pods match `selector` (deleted ones gone), e.g. after a scale-down.
pub async fn wait_pod_count(ns: &TestNamespace, selector: &str, count: usize) {
    let pods = ns.api::<Pod>();
    poll::until(&format!("{count} pod(s) matching {selector}"), Duration::from_secs(60), || async {
        let list = pods.list(&ListParams::default().labels(selector)).await.ok()?;
        (list.items.len() == count).then_some(())
    })
    .await;
}
