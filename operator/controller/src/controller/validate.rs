//! Checks of a pool that the API server's schema and CEL rules cannot express.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::children::names;
use crate::placement::resources::quantity_value;
use pice_api::{InferencePool, RoutingMode};

/// Every problem found in a pool's spec, as messages naming the field; empty when valid.
pub fn validate(pool: &InferencePool) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &pool.spec;
    if spec.routing.mode == RoutingMode::Progressive && spec.edge.pools.is_empty() {
        problems.push(
            "routing.mode is progressive but edge.pools is empty: add an edge pool or use mode auto or cloud"
                .into(),
        );
    }
    let pool_name = kube::ResourceExt::name_any(pool);
    for edge_pool in &spec.edge.pools {
        let mut seen = BTreeSet::new();
        for model in &edge_pool.models {
            let child = names::edge(&pool_name, &edge_pool.name, &model.name);
            if !seen.insert(child.clone()) {
                problems.push(format!(
                    "edge.pools[{}].models: model names collide once made DNS-safe ({child}); rename model {:?}",
                    edge_pool.name, model.name
                ));
            }
            let field = format!("edge.pools[{}].models[{}].resources", edge_pool.name, model.name);
            problems.extend(requests_within_limits(&field, model.resources.as_ref()));
        }
    }
    problems.extend(requests_within_limits("cloud.resources", spec.cloud.resources.as_ref()));
    problems
}

/// Requests above limits, which the API server would reject only when it creates the pods.
fn requests_within_limits(field: &str, resources: Option<&ResourceRequirements>) -> Vec<String> {
    let Some(resources) = resources else { return Vec::new() };
    let (Some(requests), Some(limits)) = (&resources.requests, &resources.limits) else {
        return Vec::new();
    };
    requests
        .iter()
        .filter_map(|(name, request)| {
            let limit = limits.get(name)?;
            let (r, l) = (quantity_value(request)?, quantity_value(limit)?);
            (r > l).then(|| {
                format!("{field}: request of {name} ({}) exceeds its limit ({})", request.0, limit.0)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pool;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn the_example_pool_is_valid() {
        assert_eq!(validate(&pool()), Vec::<String>::new());
    }

    #[test]
    fn progressive_mode_without_edge_pools_is_invalid() {
        let mut p = pool();
        p.spec.routing.mode = RoutingMode::Progressive;
        p.spec.edge.pools.clear();
        assert!(validate(&p)[0].contains("routing.mode is progressive"));
    }

    #[test]
    fn model_names_that_collide_once_sanitised_are_invalid() {
        let mut p = pool();
        let mut twin = p.spec.edge.pools[0].models[0].clone();
        twin.name = twin.name.replace('.', "-");
        p.spec.edge.pools[0].models.push(twin);
        assert!(validate(&p)[0].contains("collide"));
    }

    #[test]
    fn requests_above_limits_are_reported_with_the_field() {
        let mut p = pool();
        p.spec.cloud.resources = Some(ResourceRequirements {
            requests: Some([("memory".to_string(), Quantity("2Gi".into()))].into()),
            limits: Some([("memory".to_string(), Quantity("1500Mi".into()))].into()),
            ..Default::default()
        });
        assert_eq!(validate(&p), vec!["cloud.resources: request of memory (2Gi) exceeds its limit (1500Mi)"]);
    }

    #[test]
    fn quantities_parse_with_binary_and_decimal_suffixes() {
        assert_eq!(quantity_value(&Quantity("500m".into())), Some(0.5));
        assert_eq!(quantity_value(&Quantity("2Gi".into())), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(quantity_value(&Quantity("3".into())), Some(3.0));
        assert_eq!(quantity_value(&Quantity("1Xi".into())), None);
    }
}
