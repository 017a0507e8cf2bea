//! Watch-fed caches that reconcile reads instead of the API server: kube-runtime reflector stores
//! of the pools' children, of Pods and of Nodes, each object trimmed to what the operator reads
//! (no `managedFields`; Pods and Nodes keep only the fields placement and status look at).

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Node, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::api;
use crate::children::names::MANAGED_BY;

/// A stream of changed objects that feeds a cache (and may trigger reconciles).
pub type Feed<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// The caches reconcile and the autoscaler read.
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub service_accounts: Store<ServiceAccount>,
    pub roles: Store<Role>,
    pub role_bindings: Store<RoleBinding>,
    pub disruption_budgets: Store<PodDisruptionBudget>,
    /// Every pod in the cluster (edge nodes are shared with other workloads), trimmed.
    pub pods: Store<Pod>,
    /// Every Node, trimmed.
    pub nodes: Store<Node>,
    /// Set once every store above holds its first full listing.
    filled: Arc<OnceCell<Result<(), CacheStopped>>>,
}

/// The watch streams behind [`Caches`]; the caches fill only while these are polled.
pub struct Feeds {
    pub deployments: Feed<Deployment>,
    pub services: Feed<Service>,
    pub config_maps: Feed<ConfigMap>,
    pub service_accounts: Feed<ServiceAccount>,
    pub roles: Feed<Role>,
    pub role_bindings: Feed<RoleBinding>,
    pub disruption_budgets: Feed<PodDisruptionBudget>,
    pub pods: Feed<Pod>,
    pub nodes: Feed<Node>,
}

/// The caches went away (their watch streams were dropped: the controller is stopping).
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the {0} cache stopped before it was filled")]
pub struct CacheStopped(&'static str);

impl Caches {
    /// Caches of the children the operator manages (in `namespace`, or everywhere), of all Pods
    /// and of all Nodes, and the streams that fill them.
    pub fn new(client: &Client, namespace: Option<&str>) -> (Self, Feeds) {
        let ours = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
        let (deployments, deployment_feed) =
            cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (services, service_feed) = cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (config_maps, config_map_feed) =
            cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (service_accounts, service_account_feed) =
            cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (roles, role_feed) = cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (role_bindings, role_binding_feed) =
            cached(api(client, namespace), ours.clone(), drop_managed_fields);
        let (disruption_budgets, disruption_budget_feed) =
            cached(api(client, namespace), ours, drop_managed_fields);
        let (pods, pod_feed) = cached(Api::all(client.clone()), watcher::Config::default(), trim_pod);
        let (nodes, node_feed) = cached(Api::all(client.clone()), watcher::Config::default(), trim_node);
        let caches = Self {
            deployments,
            services,
            config_maps,
            service_accounts,
            roles,
            role_bindings,
            disruption_budgets,
            pods,
            nodes,
            filled: Arc::default(),
        };
        let feeds = Feeds {
            deployments: deployment_feed,
            services: service_feed,
            config_maps: config_map_feed,
            service_accounts: service_account_feed,
            roles: role_feed,
            role_bindings: role_binding_feed,
            disruption_budgets: disruption_budget_feed,
            pods: pod_feed,
            nodes: node_feed,
        };
        (caches, feeds)
    }

    /// Waits until every cache holds its first full listing; a reconcile that read an empty cache
    /// before that would write every child again. Any number of tasks may wait: one of them
    /// waits on the stores (whose readiness wakes a single waiter), the others on it.
    pub async fn ready(&self) -> Result<(), CacheStopped> {
        *self.filled.get_or_init(|| self.fill()).await
    }

    async fn fill(&self) -> Result<(), CacheStopped> {
        let waits = [
            ("Deployment", self.deployments.wait_until_ready().await),
            ("Service", self.services.wait_until_ready().await),
            ("ConfigMap", self.config_maps.wait_until_ready().await),
            ("ServiceAccount", self.service_accounts.wait_until_ready().await),
            ("Role", self.roles.wait_until_ready().await),
            ("RoleBinding", self.role_bindings.wait_until_ready().await),
            ("PodDisruptionBudget", self.disruption_budgets.wait_until_ready().await),
            ("Pod", self.pods.wait_until_ready().await),
            ("Node", self.nodes.wait_until_ready().await),
        ];
        match waits.into_iter().find(|(_, wait)| wait.is_err()) {
            Some((kind, _)) => Err(CacheStopped(kind)),
            None => Ok(()),
        }
    }
}

/// A store of `K` filled by a watch of `api` (retried with backoff), each object passed through
/// `trim` before it is kept, and the stream of objects that changed (deletions included, so a
/// deleted child triggers the reconcile that recreates it).
fn cached<K>(api: Api<K>, config: watcher::Config, trim: fn(&mut K)) -> (Store<K>, Feed<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let feed = watcher(api, config).default_backoff().modify(trim).reflect(writer).touched_objects();
    (store, feed.boxed())
}

fn drop_managed_fields<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Keeps what placement (node, phase, container requests) and status (readiness, IP, conditions,
/// the weights init container's state) read of a pod.
fn trim_pod(pod: &mut Pod) {
    pod.metadata = trim_meta(&pod.metadata);
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        node_name: spec.node_name,
        containers: spec
            .containers
            .into_iter()
            .map(|c| Container { name: c.name, resources: c.resources, ..Container::default() })
            .collect(),
        ..PodSpec::default()
    });
    pod.status = pod.status.take().map(|status| PodStatus {
        phase: status.phase,
        pod_ip: status.pod_ip,
        conditions: status.conditions,
        init_container_statuses: status.init_container_statuses,
        ..PodStatus::default()
    });
}

/// Keeps what placement reads of a node: labels, taints, whether it is schedulable, allocatable.
fn trim_node(node: &mut Node) {
    node.metadata = trim_meta(&node.metadata);
    node.spec = node.spec.take().map(|spec| NodeSpec {
        taints: spec.taints,
        unschedulable: spec.unschedulable,
        ..NodeSpec::default()
    });
    node.status = node
        .status
        .take()
        .map(|status| NodeStatus { allocatable: status.allocatable, ..NodeStatus::default() });
}

fn trim_meta(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        labels: meta.labels.clone(),
        deletion_timestamp: meta.deletion_timestamp.clone(),
        ..ObjectMeta::default()
    }
}

/// Objects of a store in `namespace` whose label `key` is `value`.
pub fn labelled<K>(store: &Store<K>, namespace: &str, key: &str, value: &str) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.state_filter(|o| {
        o.meta().namespace.as_deref() == Some(namespace)
            && o.labels().get(key).map(String::as_str) == Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trimmed_pod_keeps_what_placement_and_status_read_and_nothing_else() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}, "annotations": {"big": "x"},
                "managedFields": [{"manager": "kubelet"}], "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u"}]},
            "spec": {"nodeName": "n1", "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [{"name": "c", "image": "i", "env": [{"name": "E", "value": "1"}],
                    "resources": {"requests": {"cpu": "1"}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "x", "ready": true, "restartCount": 0}]},
        }))
        .unwrap();
        trim_pod(&mut pod);
        let kept = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            kept,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
            })
        );
    }

    #[test]
    fn a_trimmed_node_keeps_labels_taints_and_allocatable() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": {"pool": "a"}, "managedFields": [{"manager": "kubelet"}]},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "4"}, "images": [{"names": ["a"], "sizeBytes": 1}],
                "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        trim_node(&mut node);
        let kept = serde_json::to_value(&node).unwrap();
        assert_eq!(
            kept,
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n", "labels": {"pool": "a"}},
                "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
                "status": {"allocatable": {"cpu": "4"}},
            })
        );
    }
}
