//! The HTTP handlers: the OpenAI-compatible API (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/models`) and OpenAI-shaped 404s (the probes and `/metrics` are `pice_wire::probes`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use pice_wire::openai_wire::{ChatCompletionRequest, CompletionRequest, ModelCard, ModelList};
use serde::de::DeserializeOwned;

use super::answer::AnswerRequest;
use super::error::ApiError;
use super::pipeline::{self, Reply};
use super::render::{self, Flavor, Meta};
use super::request::{self, Body};
use super::state::Gateway;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
}

/// `POST /v1/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer::<ChatCompletionRequest>(&state.gateway, &headers, body, request::chat, Flavor::Chat).await
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer::<CompletionRequest>(&state.gateway, &headers, body, request::completion, Flavor::Text).await
}

/// What reads a parsed body of type `T` into an answer request.
type Reader<T> = fn(&Gateway, &HeaderMap, Body<T>) -> Result<AnswerRequest, ApiError>;

/// Parses the body, answers it and renders the answer whole or streamed.
async fn answer<T: DeserializeOwned>(
    gateway: &Arc<Gateway>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    read: Reader<T>,
    flavor: Flavor,
) -> Response {
    let parsed = request::json::<T>(body, gateway.limits).and_then(|body| read(gateway, headers, body));
    let request = match parsed {
        Ok(request) => request,
        Err(error) => {
            gateway.metrics.rejected();
            return error.into_response();
        }
    };
    let (model, streamed, include_usage) = (request.model.clone(), request.streamed, request.include_usage);
    let answer = match pipeline::answer(gateway, request).await {
        Ok(Reply::Written(answer)) => answer,
        Ok(Reply::Relayed(relayed)) => return relayed.respond(Arc::clone(gateway)).await,
        Err(error) => return error.into_response(),
    };
    let prefix = if flavor == Flavor::Chat { "chatcmpl" } else { "cmpl" };
    let meta = Meta { id: format!("{prefix}-pice-{}", gateway.next_id()), created: unix_now(), model };
    if streamed {
        render::streamed(answer, flavor, meta, include_usage)
    } else {
        render::whole(answer, flavor, meta).await
    }
}

/// `GET /v1/models`: the pool's name and the cloud model, both answered by this gateway.
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let created = unix_now();
    let mut ids = state.gateway.models().to_vec();
    ids.dedup();
    let cards = ids.into_iter().map(|id| ModelCard {
        id: id.to_owned(),
        object: "model".to_owned(),
        created,
        owned_by: format!("pice:{}", state.gateway.config.pool),
    });
    Json(ModelList { object: "list".to_owned(), data: cards.collect() })
}

/// Any other route: OpenAI's 404.
pub async fn unknown(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_url(method.as_str(), uri.path())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}
