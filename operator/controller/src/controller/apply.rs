//! Writing children: server-side apply with one field manager, and pruning what is no longer wanted.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::children::names::{FIELD_MANAGER, POOL_LABEL};
use crate::error::{Error, Result};

/// A namespaced built-in kind the operator owns.
pub trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug
{
}
impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug
{
}

/// Server-side applies every object (forced, so the operator owns the fields it sets).
pub async fn apply_all<K: Child>(client: &Client, namespace: &str, objects: &[K]) -> Result<()> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let name = object.name_any();
        api.patch(&name, &params, &Patch::Apply(object)).await.map_err(|source| Error::Apply {
            kind: K::kind(&()).into(),
            name,
            source,
        })?;
    }
    Ok(())
}

/// Deletes children of kind `K` owned by the pool (uid `owner`) whose names are not in `keep`.
pub async fn prune<K: Child>(
    client: &Client,
    namespace: &str,
    pool: &str,
    owner: &str,
    keep: &[String],
) -> Result<()> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels(&format!("{POOL_LABEL}={pool}"));
    let existing =
        api.list_metadata(&selector).await.map_err(|source| Error::List { what: "children", source })?;
    let owned = existing.items.into_iter().filter(|o| o.owner_references().iter().any(|r| r.uid == owner));
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
