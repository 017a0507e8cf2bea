//! Names and labels of the objects the operator creates for a pool.

use std::collections::BTreeMap;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "pice-operator";
/// Label with the owning pool's name, on every child and pod.
pub const POOL_LABEL: &str = "pice.dev/pool";
/// Label with the tier of a child: `cloud`, `edge` or `gateway`.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label with the edge pool of an edge child.
pub const EDGE_POOL_LABEL: &str = "pice.dev/edge-pool";
/// Label with the (sanitised) model of an edge child.
pub const MODEL_LABEL: &str = "pice.dev/model";
/// `managed-by` label value selecting everything this operator owns.
pub const MANAGED_BY: &str = "pice-operator";
/// Longest name of a Service or label value.
const MAX_NAME: usize = 63;

/// Name of the cloud LLM Deployment and Service.
pub fn cloud(pool: &str) -> String {
    dns_name(&[pool, "cloud"])
}

/// Name of the gateway Deployment, Service, ConfigMap, ServiceAccount and Role.
pub fn gateway(pool: &str) -> String {
    dns_name(&[pool, "gateway"])
}

/// Name of the Deployment and headless Service of one model on one edge pool.
pub fn edge(pool: &str, edge_pool: &str, model: &str) -> String {
    dns_name(&[pool, edge_pool, model])
}

/// A model name made safe for a label value and an object name.
pub fn model_label(model: &str) -> String {
    dns_name(&[model])
}

/// Joins parts into a DNS-1035 label: lower case, `[a-z0-9-]`, at most 63 characters. Too
/// long a name keeps its start and ends with a hash of the whole, so names stay unique.
pub fn dns_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let mut name: String = joined
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if name.len() > MAX_NAME {
        name = format!("{}-{:08x}", &name[..MAX_NAME - 9], fnv1a(joined.as_bytes()) as u32);
    }
    let trimmed = name.trim_matches('-');
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("p{}", &trimmed[..trimmed.len().min(MAX_NAME - 1)])
    } else {
        trimmed.to_string()
    }
}

/// Labels of every child of a pool in one tier.
pub fn labels(pool: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "pice".into()),
        ("app.kubernetes.io/instance".into(), pool.into()),
        ("app.kubernetes.io/managed-by".into(), MANAGED_BY.into()),
        (COMPONENT_LABEL.into(), component.into()),
        (POOL_LABEL.into(), pool.into()),
    ])
}

/// Labels of the children of one model on one edge pool.
pub fn edge_labels(pool: &str, edge_pool: &str, model: &str) -> BTreeMap<String, String> {
    let mut labels = labels(pool, "edge");
    labels.insert(EDGE_POOL_LABEL.into(), edge_pool.into());
    labels.insert(MODEL_LABEL.into(), model_label(model));
    labels
}

/// 64-bit FNV-1a: a stable hash for name suffixes and config checksums.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_with_dots_become_valid_dns_labels() {
        assert_eq!(edge("assistant", "store-east", "qwen2.5-1.5b"), "assistant-store-east-qwen2-5-1-5b");
    }

    #[test]
    fn long_names_are_truncated_to_63_characters_and_stay_distinct() {
        let a = dns_name(&["a".repeat(60).as_str(), "model-one"]);
        let b = dns_name(&["a".repeat(60).as_str(), "model-two"]);
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
    }

    #[test]
    fn names_never_start_with_a_digit_or_dash() {
        assert_eq!(model_label("7b-chat"), "p7b-chat");
        assert_eq!(model_label("-x-"), "x");
    }
}
