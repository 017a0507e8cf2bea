//! Reading API requests: the body (size limit, JSON, required fields), the model name, the
//! `x-pice-mode` header, the token budget, the sampling parameters and the conversation, into
//! an [`AnswerRequest`] that keeps the body as sent, or an OpenAI-shaped 4xx error.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use pice_wire::generation::Sampling;
use pice_wire::openai_wire::{ChatCompletionRequest, ChatMessage, CompletionRequest, Prompt, Stop};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::answer::AnswerRequest;
use super::contract;
use super::error::ApiError;
use super::render::Flavor;
use super::state::{Gateway, Limits};
use pice_api::RoutingMode;

/// The per-request mode header, in requests and responses.
pub const MODE_HEADER: &str = "x-pice-mode";

/// Characters of earlier turns a sketch prompt carries at most (about 2,000 tokens); the
/// newest turns are kept.
pub const SKETCH_CONTEXT_CHARS: usize = 8_000;

/// A JSON object body field by field, each value as the client's bytes.
pub type RawBody = BTreeMap<String, Box<RawValue>>;

/// A JSON body: the object as sent and its typed reading.
pub struct Body<T> {
    pub raw: RawBody,
    pub typed: T,
}

/// Parses a JSON object body, mapping an oversized or malformed one to 413 or 400.
pub fn json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    limits: Limits,
) -> Result<Body<T>, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(limits.max_body_bytes),
        _ => ApiError::invalid_request(rejection.body_text(), None),
    })?;
    let unparsable = |error: &dyn std::fmt::Display| {
        ApiError::invalid_request(format!("We could not parse the JSON body of your request: {error}"), None)
    };
    let raw: RawBody = serde_json::from_slice(&bytes).map_err(|error| unparsable(&error))?;
    let typed = serde_json::from_slice(&bytes).map_err(|error| unparsable(&error))?;
    Ok(Body { raw, typed })
}

/// Reads a chat completion request.
pub fn chat(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Body<ChatCompletionRequest>,
) -> Result<AnswerRequest, ApiError> {
    let Body { raw, typed } = body;
    if typed.messages.is_empty() {
        return Err(ApiError::invalid_request(
            "'messages' is a required property and must not be empty.",
            Some("messages"),
        ));
    }
    let last_user = typed.messages.iter().rposition(|m| m.role == "user" && !m.text().trim().is_empty());
    let Some(last_user) = last_user else {
        return Err(ApiError::invalid_request(
            "The messages must include a user message with text.",
            Some("messages"),
        ));
    };
    let is_instruction = |m: &&ChatMessage| matches!(m.role.as_str(), "system" | "developer");
    let instructions: Vec<String> =
        typed.messages.iter().filter(is_instruction).map(|m| m.text().into_owned()).collect();
    let turns: Vec<&ChatMessage> =
        typed.messages[..last_user].iter().filter(|m| !is_instruction(m)).collect();
    let sampling = sampling(
        [typed.temperature, typed.top_p, typed.presence_penalty, typed.frequency_penalty],
        typed.stop.as_ref(),
    );
    Ok(AnswerRequest {
        flavor: Flavor::Chat,
        model: typed.model.clone(),
        question: typed.messages[last_user].text().into_owned(),
        instructions: instructions.join("\n\n"),
        conversation: turns.iter().any(|m| m.role == "assistant"),
        earlier: newest_within(&turns, SKETCH_CONTEXT_CHARS),
        max_tokens: token_budget(typed.token_budget(), gateway.limits)?,
        seed: typed.seed,
        sampling,
        user: typed.user.clone(),
        include_usage: typed.wants_stream_usage(),
        ..answer_request(gateway, headers, raw, Flavor::Chat, &typed.model, typed.stream)?
    })
}

/// Reads a (legacy) text completion request; its prompt is the question.
pub fn completion(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Body<CompletionRequest>,
) -> Result<AnswerRequest, ApiError> {
    let Body { raw, typed } = body;
    let prompt = match typed.prompt {
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
    if prompt.trim().is_empty() {
        return Err(ApiError::invalid_request("'prompt' must not be empty.", Some("prompt")));
    }
    let sampling = sampling(
        [typed.temperature, typed.top_p, typed.presence_penalty, typed.frequency_penalty],
        typed.stop.as_ref(),
    );
    Ok(AnswerRequest {
        question: prompt,
        max_tokens: token_budget(typed.max_tokens, gateway.limits)?,
        seed: typed.seed,
        sampling,
        include_usage: typed.stream_options.as_ref().is_some_and(|options| options.include_usage),
        ..answer_request(gateway, headers, raw, Flavor::Text, &typed.model, typed.stream)?
    })
}

/// The sampling parameters of either API: temperature, top-p, presence and frequency penalty,
/// and the stop sequences.
fn sampling(values: [Option<f32>; 4], stop: Option<&Stop>) -> Sampling {
    let [temperature, top_p, presence_penalty, frequency_penalty] = values;
    let stop = stop.map(Stop::sequences).unwrap_or_default();
    Sampling { temperature, top_p, presence_penalty, frequency_penalty, stop }
}

/// What both APIs check and read alike: the model, the mode header and what keeps the
/// request cloud-only; the prompt-specific fields are left empty for the caller to fill.
fn answer_request(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: RawBody,
    flavor: Flavor,
    model: &str,
    streamed: bool,
) -> Result<AnswerRequest, ApiError> {
    if model.is_empty() {
        return Err(ApiError::invalid_request("'model' is a required property.", Some("model")));
    }
    if !gateway.models().contains(&model) {
        return Err(ApiError::model_not_found(model));
    }
    let requested = requested_mode(headers, gateway.config.routing.mode)?;
    let blocker = contract::blocker(&body, flavor);
    if let Some(blocker) = blocker.as_ref().filter(|_| requested == RoutingMode::Progressive) {
        return Err(ApiError::not_progressive(&blocker.field, blocker.why));
    }
    Ok(AnswerRequest {
        body,
        flavor,
        model: model.to_owned(),
        question: String::new(),
        instructions: String::new(),
        earlier: Vec::new(),
        conversation: false,
        max_tokens: 0,
        seed: None,
        sampling: Sampling::default(),
        user: None,
        blocker,
        requested,
        streamed,
        include_usage: false,
    })
}

/// The newest of `turns` whose text fits in `chars` characters, oldest first.
pub fn newest_within(turns: &[&ChatMessage], chars: usize) -> Vec<ChatMessage> {
    let mut room = chars;
    let mut kept: Vec<ChatMessage> = turns
        .iter()
        .rev()
        .map_while(|turn| {
            let length = turn.text().chars().count();
            room = room.checked_sub(length)?;
            Some((*turn).clone())
        })
        .collect();
    kept.reverse();
    kept
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
        assert_eq!(
            requested_mode(&headers, RoutingMode::Auto).unwrap_err().detail.param.as_deref(),
            Some(MODE_HEADER)
        );
    }

    #[test]
    fn budgets_default_and_are_capped_and_zero_is_refused() {
        assert_eq!(token_budget(None, LIMITS).unwrap(), 512);
        assert_eq!(token_budget(Some(50), LIMITS).unwrap(), 50);
        assert_eq!(token_budget(Some(100_000), LIMITS).unwrap(), 1024);
        assert_eq!(token_budget(Some(0), LIMITS).unwrap_err().detail.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn malformed_json_is_a_400_that_says_so() {
        let error =
            json::<ChatCompletionRequest>(Ok(Bytes::from_static(b"{\"model\": ")), LIMITS).err().unwrap();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.detail.message.contains("could not parse the JSON"), "{}", error.detail.message);
        let error = json::<ChatCompletionRequest>(Ok(Bytes::from_static(b"{\"messages\": 3}")), LIMITS)
            .err()
            .unwrap();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        let error = json::<ChatCompletionRequest>(Ok(Bytes::from_static(b"[]")), LIMITS).err().unwrap();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn numbers_reach_the_cloud_with_the_value_the_client_sent() {
        // Found by the request property tests: parsed into a value without serde_json's
        // float_roundtrip, this subnormal came back one unit in the last place off. The body
        // now stays the client's bytes, and a value read from it keeps its value.
        let body = br#"{"model": "m", "messages": [], "n": [{"_": -5.443733978266591e-308}]}"#;
        let Ok(parsed) = json::<ChatCompletionRequest>(Ok(Bytes::from_static(body)), LIMITS) else {
            panic!()
        };
        assert_eq!(parsed.raw["n"].get(), r#"[{"_": -5.443733978266591e-308}]"#);
        let value: serde_json::Value = serde_json::from_str(parsed.raw["n"].get()).unwrap();
        assert_eq!(value.to_string(), r#"[{"_":-5.443733978266591e-308}]"#);
    }

    #[test]
    fn the_newest_turns_are_kept_within_the_budget() {
        let turns = [
            ChatMessage::new("user", "aaaa"),
            ChatMessage::new("assistant", "bb"),
            ChatMessage::new("user", "cc"),
        ];
        let refs: Vec<&ChatMessage> = turns.iter().collect();
        let kept = newest_within(&refs, 5);
        assert_eq!(kept, turns[1..].to_vec());
        assert!(newest_within(&refs, 1).is_empty());
    }
}
