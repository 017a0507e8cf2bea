//! Deployment, Service and PodDisruptionBudget objects for one workload of a pool.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// What every child shares: its name, namespace, labels and owner.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Object name.
    pub name: String,
    /// Namespace of the pool.
    pub namespace: String,
    /// Labels, also used as the pod selector.
    pub labels: BTreeMap<String, String>,
    /// Controller reference to the pool.
    pub owner: OwnerReference,
}

impl Identity {
    /// Object metadata with labels and the owner reference.
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels.clone()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    fn selector(&self) -> LabelSelector {
        LabelSelector { match_labels: Some(self.labels.clone()), ..LabelSelector::default() }
    }
}

/// A Deployment of `replicas` pods with the given pod spec and pod annotations.
pub fn deployment(
    id: &Identity,
    replicas: i32,
    pod: PodSpec,
    annotations: BTreeMap<String, String>,
) -> Deployment {
    Deployment {
        metadata: id.meta(),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: id.selector(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(id.labels.clone()),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// A Service selecting the workload's pods; `headless` for per-pod discovery.
pub fn service(id: &Identity, ports: &[(&str, i32)], type_: &str, headless: bool) -> Service {
    Service {
        metadata: id.meta(),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            cluster_ip: headless.then(|| "None".into()),
            selector: Some(id.labels.clone()),
            publish_not_ready_addresses: headless.then_some(false),
            ports: Some(ports.iter().map(|(name, port)| service_port(name, *port)).collect()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some((*name).into()),
        port,
        target_port: Some(IntOrString::String((*name).into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// A PodDisruptionBudget keeping all but one pod of a workload up during voluntary disruption.
pub fn disruption_budget(id: &Identity) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: id.meta(),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(id.selector()),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}
