//! Real servers on 127.0.0.1 for the gateway's tests: a simulated cloud LLM (`pice-sim`'s
//! server), a cloud that always answers the same text, edge agents with the simulator backend
//! (each on its own runtime, so killing one drops its sockets like a dead process), and the
//! gateway itself, plus an HTTP client and a server-sent-events reader.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pice_api::gateway_config::{CloudTarget, GatewayConfig};
use pice_api::{RoutingMode, RoutingSpec};
use pice_edge_agent::{AgentSettings, Defaults, bind};
use pice_gateway::auth::ApiKeys;
use pice_gateway::server::{self, Discovery, Settings};
use pice_gateway::state::Limits;
use pice_sim::backend::SimBackend;
use pice_sim::server::{SimState, router};
use pice_sim::{Profile, Simulator, TpotPoint};
use pice_wire::generation::ModelBackend;
use pice_wire::openai_client::OpenAiBackend;
use prometheus::Registry;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Model name of the test cloud, as clients ask for it.
pub const CLOUD_MODEL: &str = "llama-test";
/// Name of the test pool (also a model name clients may use).
pub const POOL: &str = "assistant";

/// A simulated model whose decode step takes `tpot_ms` whatever the batch.
pub fn profile(tpot_ms: f64) -> Profile {
    Profile {
        name: "test".into(),
        model: "test-model".into(),
        prefill_tokens_per_second: 1e6,
        tpot: vec![TpotPoint { batch: 1, ms: tpot_ms }],
        max_batch: 64,
        prefix_cache_tokens: 0,
    }
}

/// An HTTP server task; aborted on drop.
pub struct Server {
    pub url: String,
    /// What a [`recording_cloud`] was sent: the path and JSON body of each request, in order.
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(router: axum::Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server { url, requests: Arc::default(), task }
}

/// `pice-sim`'s OpenAI-compatible server with a `tpot_ms` profile: the cloud LLM.
pub async fn sim_cloud(tpot_ms: f64) -> Server {
    let state = SimState::new(Simulator::start(profile(tpot_ms), 7), CLOUD_MODEL, Registry::new()).unwrap();
    serve(router(state)).await
}

/// A cloud that records every completion request (path and body) and answers it with
/// `answer(path, body)`: a whole JSON answer, a list of SSE data payloads, or an error.
pub async fn recording_cloud<F>(answer: F) -> Server
where
    F: Fn(&str, &Value) -> Reply + Clone + Send + Sync + 'static,
{
    use axum::Json;
    use axum::extract::OriginalUri;
    use axum::response::IntoResponse;
    let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = Arc::clone(&requests);
    let handle = move |OriginalUri(uri): OriginalUri, Json(request): Json<Value>| async move {
        let path = uri.path().to_owned();
        let answer = answer.clone();
        seen.lock().unwrap().push((path.clone(), request.clone()));
        match answer(&path, &request) {
            Reply::Whole(body) => Json(body).into_response(),
            Reply::Events(events) => {
                let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
                ([("content-type", "text/event-stream")], body).into_response()
            }
            Reply::Error(status, body) => {
                (axum::http::StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
            }
        }
    };
    let models = || async { Json(serde_json::json!({"object": "list", "data": []})) };
    let mut server = serve(
        axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(handle.clone()))
            .route("/v1/completions", axum::routing::post(handle))
            .route("/v1/models", axum::routing::get(models)),
    )
    .await;
    server.requests = requests;
    server
}

/// What a [`recording_cloud`] answers.
pub enum Reply {
    Whole(Value),
    /// SSE data payloads (JSON texts or `[DONE]`).
    Events(Vec<String>),
    Error(u16, Value),
}

/// A cloud that answers every chat completion, streamed or not, with `text` in one chunk.
pub async fn fixed_cloud(text: &'static str) -> Server {
    recording_cloud(move |_, request| {
        let choice = |delta: Value, finish: Value| serde_json::json!({"index": 0, "delta": delta, "finish_reason": finish});
        let usage = serde_json::json!({"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14});
        if request["stream"] == true {
            let chunks = [
                serde_json::json!({"choices": [choice(serde_json::json!({"content": text}), Value::Null)]}),
                serde_json::json!({"choices": [choice(serde_json::json!({}), "stop".into())], "usage": usage}),
            ];
            Reply::Events(chunks.iter().map(Value::to_string).chain(["[DONE]".to_owned()]).collect())
        } else {
            let message = serde_json::json!({"role": "assistant", "content": text});
            let choice = serde_json::json!({"index": 0, "message": message, "finish_reason": "stop"});
            Reply::Whole(serde_json::json!({"choices": [choice], "usage": usage}))
        }
    })
    .await
}

/// A URL where nothing listens.
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// An edge agent with the simulator backend on a runtime of its own.
pub struct Edge {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Edge {
    /// An agent running `slots` expansions at once with `queue` more waiting, `tpot_ms` a token.
    pub async fn start(slots: usize, queue: usize, tpot_ms: f64) -> Self {
        Self::with_backend(slots, queue, move || Arc::new(SimBackend::start(profile(tpot_ms), 11, None)))
            .await
    }

    /// An agent whose model is the OpenAI-compatible server at `url` (serving `model`).
    pub async fn openai(url: &str, model: &str) -> Self {
        let backend = OpenAiBackend::new(&format!("{url}/v1"), model).unwrap();
        Self::with_backend(4, 4, move || Arc::new(backend)).await
    }

    /// An agent with the backend `make` builds on the agent's own runtime.
    async fn with_backend<B: ModelBackend>(
        slots: usize,
        queue: usize,
        make: impl FnOnce() -> Arc<B> + Send + 'static,
    ) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (bound, addrs) = oneshot::channel();
        runtime.spawn(async move {
            let settings = AgentSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                metrics_listen: "127.0.0.1:0".parse().unwrap(),
                slots,
                queue,
                defaults: Defaults { max_tokens: 160, deadline: Duration::from_secs(30) },
                tls: None,
                readiness_interval: Duration::from_secs(1),
            };
            let agent = bind(settings, make(), Registry::new()).await.unwrap();
            let _ = bound.send((agent.grpc_addr().unwrap(), agent.metrics_addr().unwrap()));
            let _ = agent.serve(std::future::pending()).await;
        });
        let (addr, metrics_addr) = addrs.await.unwrap();
        Self { addr, metrics_addr, runtime: Some(runtime) }
    }

    /// Stops the agent at once, as a killed process: its tasks and sockets are dropped.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// The agent's `/metrics` text.
    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Routing for tests: small sketches, a short deadline.
pub fn routing(mode: RoutingMode) -> RoutingSpec {
    let mut routing = RoutingSpec { mode, ..RoutingSpec::default() };
    routing.sketch.max_points = 4;
    routing.sketch.words_per_point = 6;
    routing.expansion.max_tokens_per_point = 60;
    routing.expansion.deadline_ms = 3000;
    routing
}

/// What a test gateway is made of.
pub struct Setup {
    pub cloud_url: String,
    pub edges: Vec<String>,
    pub routing: RoutingSpec,
    pub keys: ApiKeys,
    pub limits: Limits,
    pub load_interval: Duration,
    pub ready_without_edge: bool,
}

impl Setup {
    pub fn new(cloud_url: &str, edges: &[&Edge], mode: RoutingMode) -> Self {
        Self {
            cloud_url: cloud_url.to_owned(),
            edges: edges.iter().map(|edge| edge.addr.to_string()).collect(),
            routing: routing(mode),
            keys: ApiKeys::default(),
            limits: Limits { max_body_bytes: 64 * 1024, default_max_tokens: 128, max_tokens_cap: 256 },
            load_interval: Duration::from_millis(100),
            ready_without_edge: false,
        }
    }
}

/// A gateway serving on 127.0.0.1.
pub struct Gateway {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), server::StartError>>,
}

impl Gateway {
    pub async fn start(setup: Setup) -> Self {
        let config = GatewayConfig {
            pool: POOL.into(),
            port: 0,
            cloud: CloudTarget { url: setup.cloud_url, model: CLOUD_MODEL.into() },
            edge: Vec::new(),
            routing: setup.routing,
        };
        let settings = Settings {
            config,
            listen: "127.0.0.1:0".parse().unwrap(),
            limits: setup.limits,
            keys: setup.keys,
            discovery: Discovery::Static(setup.edges),
            edge_tls: None,
            load_interval: setup.load_interval,
            ready_without_edge: setup.ready_without_edge,
            router: pice_gateway::router::Router::builtin().clone(),
        };
        let gateway = server::bind(settings, Registry::new()).await.unwrap();
        let url = format!("http://{}", gateway.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self { url, stop: Some(stop), task }
    }

    /// Asks the gateway to stop, as SIGTERM does.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the gateway has stopped serving.
    pub fn has_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let ready = eventually(Duration::from_secs(10), || async {
            let response = client().get(format!("{}/readyz", self.url)).send().await;
            response.is_ok_and(|r| r.status() == 200)
        });
        assert!(ready.await, "the gateway did not become ready");
    }

    /// POSTs JSON to `path` with extra headers.
    pub async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = client().post(format!("{}{path}", self.url)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// The value of the sample `series` (name and labels as printed) in `/metrics`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = client().get(format!("{}/metrics", self.url)).send().await.unwrap().text().await.unwrap();
        sample(&text, series).unwrap_or(0.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of `series` in Prometheus text, labels in any order being printed sorted.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

pub fn client() -> reqwest::Client {
    pice_wire::crypto::install_default_provider();
    reqwest::Client::new()
}

/// A chat request body.
pub fn chat(question: &str, stream: bool, seed: u64) -> Value {
    serde_json::json!({
        "model": POOL,
        "messages": [{"role": "user", "content": question}],
        "stream": stream,
        "seed": seed,
        "max_tokens": 200,
    })
}

/// The JSON payloads of a server-sent-events body, `[DONE]` as the string "[DONE]".
pub fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

/// The text of a streamed chat answer.
pub fn streamed_text(events: &[Value]) -> String {
    events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect()
}

/// Whether `check` comes true within `limit` (asked every 20 ms).
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let poll = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(limit, poll).await.is_ok()
}
