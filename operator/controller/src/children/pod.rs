//! Pieces shared by the pod templates of every tier: containers, ports, probes, spreading.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, HTTPGetAction, PodSpec, Probe, SeccompProfile, SecurityContext,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A container with a named TCP port.
pub fn container(name: &str, image: &str, args: Vec<String>, port: (&str, i32)) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        args: (!args.is_empty()).then_some(args),
        ports: Some(vec![tcp_port(port.0, port.1)]),
        ..Container::default()
    }
}

/// The security context of PICE's own containers (the gateway and the edge agent), which meets
/// the `restricted` Pod Security Standard: a non-root user (the images run as 65532), no
/// privilege escalation, no capabilities, a read-only root filesystem and the runtime's default
/// seccomp profile. The model servers' containers are the user's and keep what the pool says.
pub fn restricted_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }),
        ..SecurityContext::default()
    }
}

/// A named TCP container port.
pub fn tcp_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// An HTTP GET probe on a named port.
pub fn http_probe(path: &str, port: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}

/// Spread replicas evenly over nodes (best effort, so a small pool still schedules).
pub fn spread_over_nodes(match_labels: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(match_labels.clone()),
            ..LabelSelector::default()
        }),
        ..TopologySpreadConstraint::default()
    }]
}

/// A pod spec placed by a node selector and tolerations.
pub fn placed_pod(
    containers: Vec<Container>,
    node_selector: &BTreeMap<String, String>,
    tolerations: &[k8s_openapi::api::core::v1::Toleration],
) -> PodSpec {
    PodSpec {
        containers,
        node_selector: (!node_selector.is_empty()).then(|| node_selector.clone()),
        tolerations: (!tolerations.is_empty()).then(|| tolerations.to_vec()),
        ..PodSpec::default()
    }
}
