//! Placement from node and pod fixtures.

use k8s_openapi::api::core::v1::{Container, NodeSpec, NodeStatus, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::fixtures::pool;

fn node(name: &str, edge_pool: &str, cpu: &str, memory: &str) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.into());
    node.metadata.labels = Some([("pice.dev/edge-pool".to_string(), edge_pool.to_string())].into());
    node.spec = Some(NodeSpec {
        taints: Some(vec![Taint {
            key: "pice.dev/edge".into(),
            value: Some("true".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }]),
        ..NodeSpec::default()
    });
    let allocatable = [("cpu", cpu), ("memory", memory), ("pods", "110")];
    node.status = Some(NodeStatus {
        allocatable: Some(
            allocatable.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect(),
        ),
        ..NodeStatus::default()
    });
    node
}

fn pod_on(node: &str, cpu: &str, phase: &str) -> Pod {
    Pod {
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                resources: Some(ResourceRequirementsFixture::cpu(cpu)),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus { phase: Some(phase.into()), ..PodStatus::default() }),
        ..Pod::default()
    }
}

struct ResourceRequirementsFixture;
impl ResourceRequirementsFixture {
    fn cpu(cpu: &str) -> k8s_openapi::api::core::v1::ResourceRequirements {
        k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some([("cpu".to_string(), Quantity(cpu.into()))].into()),
            ..Default::default()
        }
    }
}

/// store-east of the example: one model asking 2 cpu and 3Gi per replica.
fn store_east() -> EdgePool {
    pool().spec.edge.pools[0].clone()
}

#[test]
fn replicas_fit_by_the_scarcest_resource_on_each_node() {
    let nodes = [node("a", "store-east", "8", "16Gi"), node("b", "store-east", "8", "7Gi")];
    let mut pool = store_east();
    pool.replicas.max = 100;
    let capacity = capacity(&pool, &nodes, &[] as &[Pod], |_| false);
    assert_eq!(capacity.nodes, 2);
    assert_eq!(capacity.fits["qwen2.5-1.5b-instruct"], 4 + 2, "a: cpu allows 4; b: memory allows 2");
}

#[test]
fn other_pods_take_room_but_own_replicas_and_finished_pods_do_not() {
    let nodes = [node("a", "store-east", "8", "64Gi")];
    let mut own = pod_on("a", "2", "Running");
    own.metadata.name = Some("own".into());
    let pods = [pod_on("a", "3", "Running"), pod_on("a", "4", "Succeeded"), own];
    let capacity = capacity(&store_east(), &nodes, &pods, |p| p.metadata.name.as_deref() == Some("own"));
    assert_eq!(capacity.fits["qwen2.5-1.5b-instruct"], 2, "8 cpu - 3 taken = 5 → two replicas of 2");
}

#[test]
fn nodes_of_other_pools_untolerated_taints_and_cordoned_nodes_do_not_count() {
    let mut cordoned = node("c", "store-east", "8", "16Gi");
    cordoned.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    let mut tainted = node("d", "store-east", "8", "16Gi");
    tainted.spec.get_or_insert_with(Default::default).taints =
        Some(vec![Taint { key: "dedicated".into(), effect: "NoSchedule".into(), ..Taint::default() }]);
    let nodes =
        [node("a", "factory-west", "8", "16Gi"), cordoned, tainted, node("b", "store-east", "2", "3Gi")];
    let capacity = capacity(&store_east(), &nodes, &[] as &[Pod], |_| false);
    assert_eq!((capacity.nodes, capacity.fits["qwen2.5-1.5b-instruct"]), (1, 1));
}

#[test]
fn a_model_asking_for_a_resource_the_nodes_lack_fits_nowhere() {
    let mut pool = store_east();
    pool.models[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some([("nvidia.com/gpu".to_string(), Quantity("1".into()))].into()),
        ..Default::default()
    });
    let capacity = capacity(&pool, &[node("a", "store-east", "8", "16Gi")], &[] as &[Pod], |_| false);
    assert_eq!(capacity.fits["qwen2.5-1.5b-instruct"], 0);
}

#[test]
fn models_of_one_pool_share_the_nodes_in_spec_order() {
    let mut pool = store_east();
    let mut second = pool.models[0].clone();
    second.name = "second".into();
    pool.models.push(second);
    pool.replicas.max = 3;
    let capacity = capacity(&pool, &[node("a", "store-east", "10", "64Gi")], &[] as &[Pod], |_| false);
    assert_eq!((capacity.fits["qwen2.5-1.5b-instruct"], capacity.fits["second"]), (3, 2));
}
