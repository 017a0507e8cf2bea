//! Test fixtures: the shipped example pool, parsed as a user's `kubectl apply` would send it.

use pice_api::InferencePool;

/// `deploy/examples/assistant.yaml` in namespace `llm`, with a uid so owner references build.
pub fn pool() -> InferencePool {
    let yaml = include_str!("../../../deploy/examples/assistant.yaml");
    let mut pool: InferencePool = serde_saphyr::from_str(yaml).expect("example pool parses");
    pool.metadata.namespace = Some("llm".into());
    pool.metadata.uid = Some("0c5e7f9a-1111-2222-3333-444455556666".into());
    pool.metadata.generation = Some(1);
    pool
}
