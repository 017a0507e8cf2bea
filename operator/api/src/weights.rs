//! Where an edge model server's weights come from: an OCI image mounted as a volume, an existing
//! PersistentVolumeClaim, a directory on the node, or an HTTP(S) URL with a sha256 that an init
//! container downloads once per node into a node-local cache.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The weights of an edge model, mounted read-only into the model server at `mountPath`. Set
/// exactly one of `image`, `pvc`, `hostPath` and `url`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.image) ? 1 : 0) + (has(self.pvc) ? 1 : 0) + (has(self.hostPath) ? 1 : 0) + (has(self.url) ? 1 : 0) == 1"
).message("weights: set exactly one of image, pvc, hostPath and url"))]
pub struct ModelWeights {
    /// An OCI image (or artifact) holding the weights, mounted read-only as an `image` volume
    /// (Kubernetes 1.35; the container runtime must support image volumes, e.g. containerd 2.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// An existing PersistentVolumeClaim in the pool's namespace holding the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcWeights>,

    /// An absolute directory on the edge node holding the weights (a `hostPath` volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("weights.hostPath must be an absolute path"))]
    pub host_path: Option<String>,

    /// One weights file at an HTTP(S) URL, checked against its sha256 and kept in a node-local
    /// cache, so a second replica on the node starts without downloading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlWeights>,

    /// The weights file under `mountPath` that engine `llama` loads (default: the file of
    /// `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._/-]{1,255}$"))]
    pub file: Option<String>,

    /// Where the model server sees the weights (default `/models`).
    #[serde(default = "default_mount_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("weights.mountPath must be an absolute path"))]
    pub mount_path: String,
}

/// Weights on a PersistentVolumeClaim.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcWeights {
    /// Name of the claim, in the pool's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: String,
    /// Directory inside the volume that holds the weights (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// One weights file downloaded from a URL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UrlWeights {
    /// HTTP(S) URL of the file.
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')")
        .message("weights.url.url must start with http:// or https://"))]
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,

    /// The file's sha256: 64 hexadecimal digits. A download with another checksum is refused.
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: String,

    /// Name of the file under `mountPath` (default: the last segment of the URL's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,200}$"))]
    pub file_name: Option<String>,
}

impl ModelWeights {
    /// The path of the weights file inside the container, when one is named (`file`, or the
    /// file of `url`).
    pub fn file_path(&self) -> Option<String> {
        let file = self.file.clone().or_else(|| self.url.as_ref().map(UrlWeights::file))?;
        Some(format!("{}/{}", self.mount_path.trim_end_matches('/'), file))
    }
}

impl UrlWeights {
    /// The file's name under the mount path.
    pub fn file(&self) -> String {
        self.file_name.clone().unwrap_or_else(|| {
            let path = self.url.split(['?', '#']).next().unwrap_or_default();
            let last = path.rsplit('/').next().unwrap_or_default();
            if last.is_empty() { "weights".into() } else { last.into() }
        })
    }
}

fn default_mount_path() -> String {
    "/models".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(url: &str, file_name: Option<&str>) -> UrlWeights {
        UrlWeights { url: url.into(), sha256: "a".repeat(64), file_name: file_name.map(Into::into) }
    }

    #[test]
    fn the_file_is_named_after_the_url_unless_a_name_is_given() {
        assert_eq!(url("https://h/m/smollm2.gguf?x=1", None).file(), "smollm2.gguf");
        assert_eq!(url("https://h/m/", None).file(), "weights");
        assert_eq!(url("https://h/m/a.gguf", Some("b.gguf")).file(), "b.gguf");
    }
}
