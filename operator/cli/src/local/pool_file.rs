//! Reading the pool file: YAML into [`InferencePool`] with the types' own serde (so a wrong
//! field is named as the API server would), then the operator's own checks
//! ([`pice_operator::controller::validate::validate`]), with the same messages.

use std::path::Path;

use serde::Deserialize;

use super::LocalError;
use pice_api::InferencePool;
use pice_operator::controller::validate::validate;

/// The fields that say what kind of object a file holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Reads and checks the pool in `path`.
pub fn load(path: &Path) -> Result<InferencePool, LocalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| LocalError::ReadPool { path: path.to_owned(), source })?;
    parse(&text).map_err(|problems| {
        let located = |p: String| p.replace("<input>:", &format!("{}:", path.display()));
        LocalError::InvalidPool {
            path: path.to_owned(),
            problems: problems.into_iter().map(located).collect(),
        }
    })
}

/// The pool in `text`, or every problem found, each naming its field.
pub fn parse(text: &str) -> Result<InferencePool, Vec<String>> {
    let meta: TypeMeta = serde_saphyr::from_str(text).map_err(yaml_problem)?;
    if meta.api_version != "pice.dev/v1alpha1" || meta.kind != "InferencePool" {
        return Err(vec![format!(
            "apiVersion/kind are {:?}/{:?}: expected pice.dev/v1alpha1/InferencePool",
            meta.api_version, meta.kind
        )]);
    }
    let pool: InferencePool = serde_saphyr::from_str(text).map_err(yaml_problem)?;
    let mut problems = Vec::new();
    if pool.metadata.name.as_deref().is_none_or(str::is_empty) {
        problems.push("metadata.name: required".to_owned());
    }
    problems.extend(validate(&pool));
    if problems.is_empty() { Ok(pool) } else { Err(problems) }
}

/// A YAML or type error (it names the line, column and field) as the one problem found.
fn yaml_problem(error: serde_saphyr::Error) -> Vec<String> {
    let text = error.to_string();
    vec![text.strip_prefix("error: ").unwrap_or(&text).to_owned()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const POOL: &str = include_str!("../../../../deploy/examples/local-sim.yaml");

    #[test]
    fn the_local_example_pool_is_valid() {
        let pool = parse(POOL).unwrap();
        assert_eq!(pool.metadata.name.as_deref(), Some("assistant"));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_reported_with_its_field() {
        let text = POOL.replace("replicas: {min: 2, max: 4}", "replicas: {min: lots, max: 4}");
        let problems = parse(&text).unwrap_err();
        assert!(problems[0].contains("min"), "{problems:?}");
    }

    #[test]
    fn the_operators_validation_messages_are_reported() {
        let text = POOL.replace("mode: auto", "mode: progressive").replace("edge:\n", "edgeless:\n");
        let problems = parse(&text).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("routing.mode is progressive but edge.pools is empty")),
            "{problems:?}"
        );
    }

    #[test]
    fn another_kind_of_object_is_refused() {
        let problems = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").unwrap_err();
        assert!(problems[0].contains("expected pice.dev/v1alpha1/InferencePool"), "{problems:?}");
    }
}
