//! An edge model's weights in its pod (see `pice_api::weights`): the volume, its read-only mount
//! in the model server, and for a URL the init container that fetches the file into the
//! node-local cache, one directory per checksum, before the model server starts.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, HostPathVolumeSource, ImageVolumeSource, PersistentVolumeClaimVolumeSource,
    PodSpec, SeccompProfile, SecurityContext, Volume, VolumeMount,
};

use pice_api::weights::{ModelWeights, UrlWeights};

/// Name of the weights volume.
pub const VOLUME: &str = "weights";
/// Name of the init container that downloads `weights.url`.
pub const FETCH_CONTAINER: &str = "fetch-weights";
/// The node-local cache of downloaded weights.
pub const NODE_CACHE: &str = "/var/lib/pice/models";
/// Where the init container sees the cache directory of its file.
const FETCH_DIR: &str = "/cache";

/// Adds the weights volume to `pod`, mounts it read-only into the container named `model_server`
/// and, for a URL, adds the fetching init container (image `agent_image`).
pub fn attach(weights: &ModelWeights, model_server: &str, agent_image: &str, pod: &mut PodSpec) {
    pod.volumes.get_or_insert_with(Vec::new).push(volume(weights));
    let mount = VolumeMount {
        name: VOLUME.into(),
        mount_path: weights.mount_path.clone(),
        read_only: Some(true),
        sub_path: weights.pvc.as_ref().and_then(|pvc| pvc.sub_path.clone()),
        ..VolumeMount::default()
    };
    for container in pod.containers.iter_mut().filter(|c| c.name == model_server) {
        container.volume_mounts.get_or_insert_with(Vec::new).push(mount.clone());
    }
    if let Some(url) = &weights.url {
        pod.init_containers.get_or_insert_with(Vec::new).push(fetcher(url, agent_image));
    }
}

fn volume(weights: &ModelWeights) -> Volume {
    let mut volume = Volume { name: VOLUME.into(), ..Volume::default() };
    if let Some(image) = &weights.image {
        volume.image = Some(ImageVolumeSource {
            reference: Some(image.clone()),
            pull_policy: Some("IfNotPresent".into()),
        });
    } else if let Some(pvc) = &weights.pvc {
        volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
            claim_name: pvc.claim_name.clone(),
            read_only: Some(true),
        });
    } else if let Some(path) = &weights.host_path {
        volume.host_path = Some(HostPathVolumeSource { path: path.clone(), type_: Some("Directory".into()) });
    } else if let Some(url) = &weights.url {
        volume.host_path =
            Some(HostPathVolumeSource { path: cache_dir(url), type_: Some("DirectoryOrCreate".into()) });
    }
    volume
}

/// The node-local cache directory of a URL's file: one per checksum, so replicas of any pool
/// that name the same file share it.
pub fn cache_dir(url: &UrlWeights) -> String {
    format!("{NODE_CACHE}/sha256-{}", url.sha256.to_ascii_lowercase())
}

/// The init container: `pice-edge-agent fetch-weights`. It runs as root because kubelet creates
/// the cache directory root-owned, but with no capabilities, no privilege escalation and a
/// read-only root filesystem; its last log line (the error) becomes its termination message,
/// which the operator reports in the pool's `Degraded` condition.
fn fetcher(url: &UrlWeights, agent_image: &str) -> Container {
    Container {
        name: FETCH_CONTAINER.into(),
        image: Some(agent_image.into()),
        args: Some(vec![
            "fetch-weights".into(),
            format!("--url={}", url.url),
            format!("--sha256={}", url.sha256),
            format!("--dest={FETCH_DIR}/{}", url.file()),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: VOLUME.into(),
            mount_path: FETCH_DIR.into(),
            ..VolumeMount::default()
        }]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use k8s_openapi::api::core::v1::Container;
    use pice_api::weights::PvcWeights;

    use super::*;

    fn weights() -> ModelWeights {
        ModelWeights {
            image: None,
            pvc: None,
            host_path: None,
            url: None,
            file: None,
            mount_path: "/models".into(),
        }
    }

    fn pod() -> PodSpec {
        let model = Container { name: "model".into(), ..Container::default() };
        let agent = Container { name: "edge-agent".into(), ..Container::default() };
        PodSpec { containers: vec![model, agent], ..PodSpec::default() }
    }

    #[test]
    fn a_url_is_fetched_by_an_init_container_into_the_nodes_cache_and_mounted_read_only() {
        let sha = "AB".repeat(32);
        let url =
            UrlWeights { url: "http://files/smollm2.gguf".into(), sha256: sha.clone(), file_name: None };
        let mut pod = pod();
        attach(&ModelWeights { url: Some(url), ..weights() }, "model", "agent:1", &mut pod);
        let volume = &pod.volumes.as_ref().unwrap()[0];
        let host = volume.host_path.as_ref().unwrap();
        assert_eq!(host.path, format!("/var/lib/pice/models/sha256-{}", sha.to_lowercase()));
        let init = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.image.as_deref(), Some("agent:1"));
        let args = init.args.as_ref().unwrap();
        assert_eq!(args[0], "fetch-weights");
        assert!(args.contains(&"--dest=/cache/smollm2.gguf".to_string()), "{args:?}");
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/models", Some(true)));
        assert!(pod.containers[1].volume_mounts.is_none(), "the agent does not see the weights");
    }

    #[test]
    fn a_claim_an_image_and_a_host_path_are_volumes_without_an_init_container() {
        let claim = PvcWeights { claim_name: "llm-weights".into(), sub_path: Some("qwen".into()) };
        let cases = [
            ModelWeights { pvc: Some(claim), ..weights() },
            ModelWeights { image: Some("registry/weights:1".into()), ..weights() },
            ModelWeights { host_path: Some("/srv/models".into()), ..weights() },
        ];
        for weights in cases {
            let mut pod = pod();
            attach(&weights, "model", "agent:1", &mut pod);
            assert!(pod.init_containers.is_none());
            let volume = &pod.volumes.as_ref().unwrap()[0];
            let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[0];
            if let Some(pvc) = &volume.persistent_volume_claim {
                assert_eq!((pvc.claim_name.as_str(), pvc.read_only), ("llm-weights", Some(true)));
                assert_eq!(mount.sub_path.as_deref(), Some("qwen"));
            } else if let Some(image) = &volume.image {
                assert_eq!(image.reference.as_deref(), Some("registry/weights:1"));
            } else {
                assert_eq!(volume.host_path.as_ref().unwrap().path, "/srv/models");
            }
        }
    }
}
