//! Reading API requests: the body (size limit, JSON, required fields), the model name, the
//! `x-pice-mode` header and the token budget, into an [`AnswerRequest`] or an OpenAI-shaped
//! 4xx error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use pice_wire::openai_wire::{ChatCompletionRequest, ChatMessage, CompletionRequest, Prompt};
use serde::de::DeserializeOwned;

use super::answer::AnswerRequest;
use super::error::ApiError;
use super::state::{Gateway, Limits};
use pice_api::RoutingMode;

/// The per-request mode header, in requests and responses.
pub const MODE_HEADER: &str = "x-pice-mode";

/// What every completion request carries besides its prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Common {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
}

/// Parses a JSON body, mapping an oversized or malformed one to 413 or 400.
pub fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, limits: Limits) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(limits.max_body_bytes),
        _ => ApiError::invalid_request(rejection.body_text(), None),
    })?;
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::invalid_request(format!("We could not parse the JSON body of your request: {error}"), None)
    })
}

/// Reads a chat completion request.
pub fn chat(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: ChatCompletionRequest,
) -> Result<(Common, AnswerRequest), ApiError> {
    if body.messages.is_empty() {
        return Err(ApiError::invalid_request(
            "'messages' is a required property and must not be empty.",
            Some("messages"),
        ));
    }
    let common =
        Common { model: body.model.clone(), stream: body.stream, include_usage: body.wants_stream_usage() };
    let (budget, seed) = (body.token_budget(), body.seed);
    let answer = answer_request(gateway, headers, &common, body.messages, budget, seed)?;
    Ok((common, answer))
}

/// Reads a (legacy) text completion request; its prompt becomes one user message.
pub fn completion(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: CompletionRequest,
) -> Result<(Common, AnswerRequest), ApiError> {
    let prompt = match body.prompt {
        Some(Prompt::Text(text)) => text,
        Some(Prompt::Texts(texts)) if texts.len() == 1 => texts.concat(),
        Some(Prompt::Texts(_)) => {
            return Err(ApiError::invalid_request(
                "This gateway answers one prompt per request.",
                Some("prompt"),
            ));
        }
        None => return Err(ApiError::invalid_request("'prompt' is a required property.", Some("prompt"))),
    };
    let include_usage = body.stream_options.as_ref().is_some_and(|options| options.include_usage);
    let common = Common { model: body.model, stream: body.stream, include_usage };
    let messages = vec![ChatMessage::new("user", prompt)];
    let answer = answer_request(gateway, headers, &common, messages, body.max_tokens, body.seed)?;
    Ok((common, answer))
}

fn answer_request(
    gateway: &Gateway,
    headers: &HeaderMap,
    common: &Common,
    messages: Vec<ChatMessage>,
    max_tokens: Option<u32>,
    seed: Option<u64>,
) -> Result<AnswerRequest, ApiError> {
    if common.model.is_empty() {
        return Err(ApiError::invalid_request("'model' is a required property.", Some("model")));
    }
    if !gateway.models().contains(&common.model.as_str()) {
        return Err(ApiError::model_not_found(&common.model));
    }
    let requested = requested_mode(headers, gateway.config.routing.mode)?;
    let max_tokens = token_budget(max_tokens, gateway.limits)?;
    let question = messages.iter().rev().find(|m| m.role == "user").map(|m| m.text().into_owned());
    let question = question.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::invalid_request("The messages must include a user message with text.", Some("messages"))
    })?;
    let conversation = messages.iter().any(|m| m.role == "assistant");
    Ok(AnswerRequest {
        messages,
        question,
        conversation,
        max_tokens,
        seed,
        requested,
        streamed: common.stream,
    })
}

/// The mode of the request: its `x-pice-mode` header, else the pool's.
pub fn requested_mode(headers: &HeaderMap, pool_mode: RoutingMode) -> Result<RoutingMode, ApiError> {
    let Some(value) = headers.get(MODE_HEADER) else {
        return Ok(pool_mode);
    };
    match value.to_str().map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Ok("auto") => Ok(RoutingMode::Auto),
        Ok("cloud") => Ok(RoutingMode::Cloud),
        Ok("progressive") => Ok(RoutingMode::Progressive),
        _ => Err(ApiError::invalid_request(
            format!("The {MODE_HEADER} header must be auto, cloud or progressive."),
            Some(MODE_HEADER),
        )),
    }
}

/// The answer's budget: the request's, else the default, lowered to the cap; 0 is refused.
pub fn token_budget(requested: Option<u32>, limits: Limits) -> Result<u32, ApiError> {
    match requested {
        Some(0) => Err(ApiError::invalid_request("max_tokens must be at least 1.", Some("max_tokens"))),
        Some(tokens) => Ok(tokens.min(limits.max_tokens_cap)),
        None => Ok(limits.default_max_tokens.min(limits.max_tokens_cap)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::HeaderValue;

    use super::*;

    const LIMITS: Limits = Limits { max_body_bytes: 100, default_max_tokens: 512, max_tokens_cap: 1024 };

    #[test]
    fn the_mode_header_overrides_the_pool_and_must_be_known() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested_mode(&headers, RoutingMode::Auto).unwrap(), RoutingMode::Auto);
        headers.insert(MODE_HEADER, HeaderValue::from_static("Progressive"));
        assert_eq!(requested_mode(&headers, RoutingMode::Cloud).unwrap(), RoutingMode::Progressive);
        headers.insert(MODE_HEADER, HeaderValue::from_static("edge"));
        assert_eq!(requested_mode(&headers, RoutingMode::Auto).unwrap_err().param, Some(MODE_HEADER));
    }

    #[test]
    fn budgets_default_and_are_capped_and_zero_is_refused() {
        assert_eq!(token_budget(None, LIMITS).unwrap(), 512);
        assert_eq!(token_budget(Some(50), LIMITS).unwrap(), 50);
        assert_eq!(token_budget(Some(100_000), LIMITS).unwrap(), 1024);
        assert_eq!(token_budget(Some(0), LIMITS).unwrap_err().param, Some("max_tokens"));
    }

    #[test]
    fn malformed_json_is_a_400_that_says_so() {
        let error =
            json::<ChatCompletionRequest>(Ok(Bytes::from_static(b"{\"model\": ")), LIMITS).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("could not parse the JSON"), "{}", error.message);
        let error =
            json::<ChatCompletionRequest>(Ok(Bytes::from_static(b"{\"messages\": 3}")), LIMITS).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }
}
