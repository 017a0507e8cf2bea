//! Writing children only when they change. Each desired object carries a hash of itself (the
//! annotation [`SPEC_HASH`]); it is server-side applied (one field manager, forced) only when the
//! cached object lacks that hash, or holds it but drifted where the hash cannot see (a Deployment
//! scaled by hand). Children the spec no longer asks for are pruned from what the cache holds.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use super::cache::{Caches, labelled};
use crate::children::names::{FIELD_MANAGER, POOL_LABEL};
use crate::error::{Error, Result};

/// Annotation holding the hash of what the operator last wrote to a child.
pub const SPEC_HASH: &str = "pice.dev/spec-hash";

/// How long a write counts as landed while the cache has not caught up with it yet.
const WRITE_SETTLES: Duration = Duration::from_secs(30);

/// A namespaced kind the operator owns, with the cache that holds it.
pub trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Serialize
    + DeserializeOwned
    + Clone
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The cache of this kind.
    fn cache(caches: &Caches) -> &Store<Self>;

    /// Whether `live`, which holds the hash of `self`, was changed by someone else in a field
    /// the operator owns.
    fn drifted(&self, _live: &Self) -> bool {
        false
    }
}

impl Child for Deployment {
    fn cache(caches: &Caches) -> &Store<Self> {
        &caches.deployments
    }

    fn drifted(&self, live: &Self) -> bool {
        let replicas = |d: &Self| d.spec.as_ref().and_then(|s| s.replicas);
        replicas(self) != replicas(live)
    }
}

/// Kinds whose only tie to the caches is which store holds them.
macro_rules! cached_in {
    ($($kind:ty => $store:ident),* $(,)?) => {$(
        impl Child for $kind {
            fn cache(caches: &Caches) -> &Store<Self> {
                &caches.$store
            }
        }
    )*};
}

cached_in! {
    Service => services,
    ConfigMap => config_maps,
    ServiceAccount => service_accounts,
    Role => roles,
    RoleBinding => role_bindings,
    PodDisruptionBudget => disruption_budgets,
}

/// The hashes written in the last [`WRITE_SETTLES`], by object, so that a reconcile that runs
/// before the cache saw a write does not write it again.
#[derive(Debug, Default)]
pub struct RecentWrites(Mutex<HashMap<String, (String, Instant)>>);

impl RecentWrites {
    fn get(&self, key: &str) -> Option<String> {
        let writes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        writes.get(key).filter(|(_, at)| at.elapsed() < WRITE_SETTLES).map(|(hash, _)| hash.clone())
    }

    fn remember(&self, key: String, hash: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (hash, Instant::now()));
    }

    /// Forgets the writes that have settled (called once per autoscaler pass, not per lookup).
    pub fn forget_settled(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, at)| at.elapsed() < WRITE_SETTLES);
    }
}

/// Applies the objects that differ from the cache; returns the names of those written.
pub async fn apply_changed<K: Child>(ctx: &Context, namespace: &str, objects: &[K]) -> Result<Vec<String>> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let kind = K::kind(&());
    let mut written = Vec::new();
    for object in objects {
        let (object, hash) = stamped(object)?;
        let name = object.name_any();
        let key = format!("{kind}/{namespace}/{name}");
        let live = K::cache(&ctx.caches).get(&ObjectRef::new(&name).within(namespace));
        if !needs_write(&object, &hash, live.as_deref(), ctx.recent_writes.get(&key).as_deref()) {
            ctx.metrics.child_writes.with_label_values(&[&kind, "unchanged"]).inc();
            continue;
        }
        api.patch(&name, &params, &Patch::Apply(&object)).await.map_err(|source| Error::Apply {
            kind: kind.to_string(),
            name: name.clone(),
            source,
        })?;
        ctx.metrics.child_writes.with_label_values(&[&kind, "applied"]).inc();
        ctx.recent_writes.remember(key, hash);
        written.push(name);
    }
    Ok(written)
}

/// `object` with the hash of its content in [`SPEC_HASH`], and that hash.
fn stamped<K: Child>(object: &K) -> Result<(K, String)> {
    let bytes = serde_json::to_vec(object).map_err(|source| Error::Serialize {
        what: format!("{} {}", K::kind(&()), object.name_any()),
        source,
    })?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hash: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    let mut object = object.clone();
    object.annotations_mut().insert(SPEC_HASH.into(), hash.clone());
    Ok((object, hash))
}

/// Whether `desired` (hash `hash`) must be written, given the cached object and the hash written
/// last, if it was written a moment ago.
fn needs_write<K: Child>(desired: &K, hash: &str, live: Option<&K>, recent: Option<&str>) -> bool {
    let Some(live) = live else { return true };
    match live.annotations().get(SPEC_HASH) {
        Some(written) if written == hash => desired.drifted(live),
        // The cache may not have seen the write that put this hash there yet.
        _ => recent != Some(hash),
    }
}

/// Deletes the cached children of kind `K` of the pool (`name`, uid `owner`) whose names are not
/// in `keep`.
pub async fn prune<K: Child>(
    ctx: &Context,
    namespace: &str,
    pool: &str,
    owner: &str,
    keep: &[String],
) -> Result<()> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let cached = labelled(K::cache(&ctx.caches), namespace, POOL_LABEL, pool);
    let owned = cached.iter().filter(|o| o.owner_references().iter().any(|r| r.uid == owner));
    for stale in owned.filter(|o| !keep.contains(&o.name_any())) {
        let name = stale.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(kind = %K::kind(&()), %name, "deleted stale child"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(source) => return Err(Error::Prune { kind: K::kind(&()).into(), name, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32, hash: Option<&str>) -> Deployment {
        let annotations = hash.map(|h| json!({SPEC_HASH: h})).unwrap_or(json!({}));
        serde_json::from_value(json!({
            "metadata": {"name": "d", "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
        }))
        .unwrap()
    }

    #[test]
    fn the_hash_follows_the_content_and_is_stable() {
        let (first, hash) = stamped(&deployment(2, None)).unwrap();
        assert_eq!(stamped(&deployment(2, None)).unwrap().1, hash);
        assert_ne!(stamped(&deployment(3, None)).unwrap().1, hash);
        assert_eq!(first.annotations().get(SPEC_HASH), Some(&hash));
        assert_eq!(hash.len(), 24);
    }

    #[test]
    fn a_child_is_written_when_missing_changed_or_scaled_by_hand_and_not_otherwise() {
        let desired = deployment(2, None);
        let cases = [
            ("not in the cache", None, None, true),
            ("cached with the same hash", Some(deployment(2, Some("h"))), None, false),
            ("cached with another hash", Some(deployment(2, Some("old"))), None, true),
            ("cached without a hash (an older operator wrote it)", Some(deployment(2, None)), None, true),
            ("scaled by hand since", Some(deployment(5, Some("h"))), None, true),
            ("written a moment ago, cache behind", Some(deployment(1, Some("old"))), Some("h"), false),
            ("written a moment ago with another hash", Some(deployment(1, Some("old"))), Some("x"), true),
        ];
        for (what, live, recent, expected) in cases {
            assert_eq!(needs_write(&desired, "h", live.as_ref(), recent), expected, "{what}");
        }
    }
}
