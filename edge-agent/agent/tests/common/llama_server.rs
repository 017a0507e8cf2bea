//! A real llama.cpp OpenAI-compatible server for tests: llama-cpp-python's `llama_cpp.server`
//! (venv of `tests/llama/server-venv.sh`, python in `PICE_LLAMA_SERVER_PYTHON`) serving the GGUF
//! at `PICE_MODEL_PATH` on a free loopback port; it stands in for the cloud or an edge model
//! server. One file, included with `#[path]` by the edge agent's and the gateway's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to load the model and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The model name the server serves (`--model_alias`).
pub const MODEL: &str = "smollm2-135m-instruct";

/// A running server; dropping it kills the process.
pub struct LlamaServer {
    /// API root, e.g. `http://127.0.0.1:41234/v1`.
    pub base_url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// Starts the server with `extra` arguments after the defaults (the GGUF's own chat
    /// template, 2048 tokens of context, requests queued rather than interrupting each other)
    /// and waits until `GET /v1/models` answers.
    pub async fn start(extra: &[&str]) -> Self {
        let python = env_path("PICE_LLAMA_SERVER_PYTHON", "tests/llama/server-venv.sh");
        let model = env_path("PICE_MODEL_PATH", "tests/llama/fetch-model.sh");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("llama-server.log");
        let out = File::create(&log).unwrap();
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--n_ctx", "2048"])
            // By default a new request (even `GET /v1/models`, which pollers send) cuts the
            // stream in progress short; a model server shared by a gateway and agents must not.
            .args(["--interrupt_requests", "false"])
            .args(["--port", &port.to_string(), "--model_alias", MODEL, "--model"])
            .arg(model)
            .args(extra)
            .stderr(out.try_clone().unwrap())
            .stdout(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Self { base_url: format!("http://127.0.0.1:{port}/v1"), child, log, _dir: dir };
        server.wait_ready().await;
        server
    }

    /// What the server has written to stdout and stderr so far (llama.cpp's and uvicorn's logs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for a failure message.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    async fn wait_ready(&mut self) {
        pice_wire::crypto::install_default_provider();
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("llama_cpp.server exited ({status}) before answering:\n{}", self.log_tail());
            }
            let response = client.get(format!("{}/models", self.base_url)).send().await;
            if response.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "llama_cpp.server did not answer:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A path from `var`, which `make llama` sets from `script`'s last line.
fn env_path(var: &str, script: &str) -> PathBuf {
    let value = std::env::var_os(var)
        .unwrap_or_else(|| panic!("{var} is not set; `make llama` sets it from {script}"));
    PathBuf::from(value)
}
