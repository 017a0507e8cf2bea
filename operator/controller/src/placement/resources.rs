//! Amounts of node resources (cpu, memory, pods, GPUs, ...) as plain numbers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use pice_api::EdgeModel;

/// Resource amounts by name; `pods` counts pod slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources(pub BTreeMap<String, f64>);

impl Resources {
    /// What a node can allocate.
    pub fn allocatable(node: &Node) -> Self {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
        Self(allocatable.iter().filter_map(|(k, q)| Some((k.clone(), quantity_value(q)?))).collect())
    }

    /// What a pod requests: its containers' requests and one pod slot.
    pub fn requested_by(pod: &Pod) -> Self {
        let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        containers.iter().fold(Self::one_pod(), |sum, c| sum.plus(&Self::requests(c.resources.as_ref())))
    }

    /// What one replica of an edge model requests.
    pub fn of_model(model: &EdgeModel) -> Self {
        Self::one_pod().plus(&Self::requests(model.resources.as_ref()))
    }

    /// How many times `need` fits into `self` (0 if `self` lacks a resource `need` asks for).
    pub fn how_many(&self, need: &Self) -> i32 {
        let counts = need.0.iter().filter(|(_, amount)| **amount > 0.0).map(|(name, amount)| {
            let free = self.0.get(name).copied().unwrap_or(0.0).max(0.0);
            (free / amount + 1e-9).floor()
        });
        counts.fold(f64::from(i32::MAX), f64::min) as i32
    }

    /// `self` less `other`, resource by resource (may go negative on an overcommitted node).
    pub fn minus(&self, other: &Self) -> Self {
        let mut left = self.0.clone();
        for (name, amount) in &other.0 {
            *left.entry(name.clone()).or_insert(0.0) -= amount;
        }
        Self(left)
    }

    /// `self` plus `other`, resource by resource.
    pub fn plus(&self, other: &Self) -> Self {
        let mut sum = self.0.clone();
        for (name, amount) in &other.0 {
            *sum.entry(name.clone()).or_insert(0.0) += amount;
        }
        Self(sum)
    }

    fn one_pod() -> Self {
        Self(BTreeMap::from([("pods".to_string(), 1.0)]))
    }

    /// Requests of a container; a limit without a request counts as the request (as the API
    /// server defaults it).
    fn requests(resources: Option<&ResourceRequirements>) -> Self {
        let Some(resources) = resources else { return Self::default() };
        let mut amounts: BTreeMap<String, f64> = BTreeMap::new();
        for (name, q) in resources.limits.iter().flatten().chain(resources.requests.iter().flatten()) {
            if let Some(value) = quantity_value(q) {
                amounts.insert(name.clone(), value);
            }
        }
        Self(amounts)
    }
}

/// A resource quantity as a number (`500m` = 0.5, `2Gi` = 2·2³⁰), or `None` if unparsable.
pub fn quantity_value(quantity: &Quantity) -> Option<f64> {
    let text = quantity.0.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some(number * scale)
}
