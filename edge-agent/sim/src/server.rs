//! The `pice-sim` HTTP API: OpenAI-compatible chat and text completions (streamed and whole),
//! models, health and metrics, every response marked as simulated.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use futures::Stream;
use prometheus::Registry;

use super::metrics::EngineCollector;
use super::simulator::{SimulatedRun, Simulator};
use super::{SIMULATED_HEADER, SIMULATED_SUFFIX, SYSTEM_FINGERPRINT};
use pice_wire::openai_wire::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChoiceLogprobs,
    ChunkChoice, CompletionRequest, Delta, ErrorBody, ErrorDetail, ModelCard, ModelList, Prompt, TextChoice,
    TextCompletion, TokenLogprob, Usage,
};
use pice_wire::probes::{self, Readiness};

/// Budget for requests that set neither `max_tokens` nor `max_completion_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// What the handlers share.
#[derive(Clone)]
pub struct SimState {
    simulator: Simulator,
    model: Arc<str>,
    registry: Registry,
    next_id: Arc<AtomicU64>,
}

impl SimState {
    /// Serves `simulator` as `<model>-simulated`; registers its metrics in `registry`.
    pub fn new(simulator: Simulator, model: &str, registry: Registry) -> Result<Self, prometheus::Error> {
        let model: Arc<str> = format!("{model}{SIMULATED_SUFFIX}").into();
        let collector = EngineCollector::new(simulator.engine().shared_stats(), &model)?;
        registry.register(Box::new(collector))?;
        Ok(Self { simulator, model, registry, next_id: Arc::new(AtomicU64::new(1)) })
    }
}

/// The simulator's routes.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(text_completions))
        .route("/v1/models", get(models))
        .merge(probes::router(state.registry.clone(), Readiness::always()))
        .layer(middleware::map_response(mark_simulated))
        .with_state(state)
}

async fn mark_simulated(mut response: Response) -> Response {
    response.headers_mut().insert(SIMULATED_HEADER, HeaderValue::from_static("true"));
    response
}

/// An error in OpenAI's JSON shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_client_error() { "invalid_request_error" } else { "server_error" };
        let detail = ErrorDetail { message: self.message, kind: kind.to_owned(), ..ErrorDetail::default() };
        (self.status, Json(ErrorBody { error: detail })).into_response()
    }
}

async fn chat_completions(
    State(state): State<SimState>,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages must not be empty"));
    }
    let max_tokens = request.token_budget().unwrap_or(DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
        return Err(ApiError::invalid("max_tokens must be at least 1"));
    }
    let run = state.simulator.complete(&request.messages, max_tokens, request.seed);
    let meta = Meta {
        id: format!("chatcmpl-sim-{}", state.next_id.fetch_add(1, Ordering::Relaxed)),
        created: unix_now(),
        model: state.model.to_string(),
    };
    if request.stream {
        let chunks = chunk_events(run, meta, request.logprobs, request.wants_stream_usage());
        return Ok(Sse::new(chunks).into_response());
    }
    Ok(Json(whole_completion(run, meta, request.logprobs).await?).into_response())
}

/// `POST /v1/completions`: the prompt is simulated as one user message.
async fn text_completions(
    State(state): State<SimState>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let prompt = match request.prompt {
        Some(Prompt::Text(text)) => text,
        Some(Prompt::Texts(mut texts)) if texts.len() == 1 => texts.remove(0),
        _ => return Err(ApiError::invalid("prompt must be one string")),
    };
    let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
        return Err(ApiError::invalid("max_tokens must be at least 1"));
    }
    let mut run = state.simulator.complete(&[ChatMessage::new("user", prompt)], max_tokens, request.seed);
    let meta = Meta {
        id: format!("cmpl-sim-{}", state.next_id.fetch_add(1, Ordering::Relaxed)),
        created: unix_now(),
        model: state.model.to_string(),
    };
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|options| options.include_usage);
        return Ok(Sse::new(text_events(run, meta, include_usage)).into_response());
    }
    let mut text = String::new();
    while let Some((token, _)) = run.next_token().await {
        text.push_str(token);
    }
    if !run.is_complete() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the simulated engine stopped".into(),
        });
    }
    let choice = text_choice(text, Some(run.finish_reason().as_str()));
    Ok(Json(meta.text(choice, Some(usage(&run)))).into_response())
}

/// The SSE events of a streamed text completion: one per token, a finish event, the usage
/// event if asked for, then `[DONE]`.
fn text_events(
    mut run: SimulatedRun,
    meta: Meta,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let event = |completion: TextCompletion| {
        Event::default()
            .json_data(completion)
            .unwrap_or_else(|_| Event::default().comment("unserialisable chunk"))
    };
    async_stream::stream! {
        while let Some((token, _)) = run.next_token().await {
            yield Ok(event(meta.text(text_choice(token.to_owned(), None), None)));
        }
        if !run.is_complete() {
            return;
        }
        yield Ok(event(meta.text(text_choice(String::new(), Some(run.finish_reason().as_str())), None)));
        if include_usage {
            yield Ok(event(meta.text(Vec::new(), Some(usage(&run)))));
        }
        yield Ok(Event::default().data("[DONE]"));
    }
}

fn text_choice(text: String, finish_reason: Option<&str>) -> Vec<TextChoice> {
    vec![TextChoice { index: 0, text, finish_reason: finish_reason.map(str::to_owned), logprobs: None }]
}

/// The fields every completion object repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
}

impl Meta {
    fn text(&self, choices: Vec<TextChoice>, usage: Option<Usage>) -> TextCompletion {
        TextCompletion {
            id: self.id.clone(),
            object: "text_completion".to_owned(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: Some(SYSTEM_FINGERPRINT.to_owned()),
            choices,
            usage,
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> Event {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: Some(SYSTEM_FINGERPRINT.to_owned()),
            choices,
            usage,
        };
        Event::default().json_data(chunk).unwrap_or_else(|_| Event::default().comment("unserialisable chunk"))
    }
}

fn choice(delta: Delta, finish_reason: Option<&str>, logprobs: Option<ChoiceLogprobs>) -> Vec<ChunkChoice> {
    vec![ChunkChoice { index: 0, delta, finish_reason: finish_reason.map(str::to_owned), logprobs }]
}

fn token_logprobs(tokens: Vec<TokenLogprob>) -> ChoiceLogprobs {
    ChoiceLogprobs { content: Some(tokens) }
}

fn token_logprob(token: &str, logprob: f64) -> TokenLogprob {
    TokenLogprob {
        token: token.to_owned(),
        logprob,
        bytes: Some(token.as_bytes().to_vec()),
        top_logprobs: Vec::new(),
    }
}

fn usage(run: &SimulatedRun) -> Usage {
    let (prompt, completion) = (run.prompt_tokens(), run.completion_tokens());
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
    }
}

/// The SSE events of a streamed completion, in OpenAI's order: a role chunk, one chunk per
/// token, a finish chunk, the usage chunk if asked for, then `[DONE]`.
fn chunk_events(
    mut run: SimulatedRun,
    meta: Meta,
    logprobs: bool,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let role = Delta { role: Some("assistant".to_owned()), content: Some(String::new()) };
        yield Ok(meta.chunk(choice(role, None, None), None));
        while let Some((token, logprob)) = run.next_token().await {
            let delta = Delta { role: None, content: Some(token.to_owned()) };
            let logprobs = logprobs.then(|| token_logprobs(vec![token_logprob(token, logprob)]));
            yield Ok(meta.chunk(choice(delta, None, logprobs), None));
        }
        if !run.is_complete() {
            return;
        }
        let reason = run.finish_reason().as_str();
        yield Ok(meta.chunk(choice(Delta::default(), Some(reason), None), None));
        if include_usage {
            yield Ok(meta.chunk(Vec::new(), Some(usage(&run))));
        }
        yield Ok(Event::default().data("[DONE]"));
    }
}

async fn whole_completion(
    mut run: SimulatedRun,
    meta: Meta,
    logprobs: bool,
) -> Result<ChatCompletion, ApiError> {
    let mut text = String::new();
    let mut tokens = Vec::new();
    while let Some((token, logprob)) = run.next_token().await {
        text.push_str(token);
        tokens.push(token_logprob(token, logprob));
    }
    if !run.is_complete() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the simulated engine stopped".into(),
        });
    }
    Ok(ChatCompletion {
        id: meta.id,
        object: "chat.completion".to_owned(),
        created: meta.created,
        model: meta.model,
        system_fingerprint: Some(SYSTEM_FINGERPRINT.to_owned()),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage::new("assistant", text),
            finish_reason: Some(run.finish_reason().as_str().to_owned()),
            logprobs: logprobs.then(|| token_logprobs(tokens)),
        }],
        usage: Some(usage(&run)),
    })
}

async fn models(State(state): State<SimState>) -> Json<ModelList> {
    let card = ModelCard {
        id: state.model.to_string(),
        object: "model".to_owned(),
        created: unix_now(),
        owned_by: "pice-sim (simulated)".to_owned(),
    };
    Json(ModelList { object: "list".to_owned(), data: vec![card] })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
