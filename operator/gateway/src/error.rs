//! The gateway's API error: an HTTP status and OpenAI's error body
//! (`{"error": {"message", "type", "param", "code"}}`), so SDKs raise their usual exceptions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pice_wire::generation::BackendError;
use pice_wire::openai_wire::{ErrorBody, ErrorDetail};
use serde_json::Value;

/// An error answered to an API client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel in every `Result` of the request path, which stays small.
    pub detail: Box<ErrorDetail>,
    /// `Retry-After` of an overloaded upstream, passed on with its 429.
    pub retry_after: Option<HeaderValue>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        let detail = ErrorDetail { message: message.into(), kind: kind.to_owned(), param: None, code: None };
        Self { status, detail: Box::new(detail), retry_after: None }
    }

    fn with_param(mut self, param: Option<&str>) -> Self {
        self.detail.param = param.map(str::to_owned);
        self
    }

    fn with_code(mut self, code: &str) -> Self {
        self.detail.code = Some(code.to_owned());
        self
    }

    /// 400: the request is malformed or misses a field (`param` names it).
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_param(param)
    }

    /// 400: the request asked for progressive mode with a field only a cloud-only answer keeps.
    pub fn not_progressive(field: &str, why: &str) -> Self {
        let message = format!(
            "This request cannot be answered progressively: {why}. Send it without the \
             x-pice-mode: progressive header (or with x-pice-mode: cloud) to have the cloud LLM \
             answer it whole."
        );
        Self::invalid_request(message, Some(field)).with_code("unsupported_in_progressive_mode")
    }

    /// 429: the pool is past the load it takes on; `Retry-After` says when to try again.
    pub fn over_capacity(retry_after_seconds: u64) -> Self {
        let message = format!(
            "The pool is over its capacity: every way of answering is estimated to take longer \
             than its latency limit. Retry after {retry_after_seconds} s."
        );
        let mut error =
            Self::new(StatusCode::TOO_MANY_REQUESTS, "requests", message).with_code("rate_limit_exceeded");
        error.retry_after = Some(HeaderValue::from(retry_after_seconds));
        error
    }

    /// 401: no API key or a wrong one.
    pub fn invalid_api_key(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message).with_code("invalid_api_key")
    }

    /// 404: the pool serves no model of that name.
    pub fn model_not_found(model: &str) -> Self {
        let message = format!("The model `{model}` does not exist or you do not have access to it.");
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
            .with_param(Some("model"))
            .with_code("model_not_found")
    }

    /// 404: no such route.
    pub fn unknown_url(method: &str, path: &str) -> Self {
        let message = format!("Invalid URL ({method} {path})");
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message).with_code("unknown_url")
    }

    /// 413: the body is over the gateway's limit.
    pub fn body_too_large(limit: usize) -> Self {
        let message = format!("The request body is larger than this gateway's limit of {limit} bytes.");
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", message)
            .with_code("request_too_large")
    }

    /// 503: the cloud LLM cannot be reached or failed before answering.
    pub fn cloud_unavailable(detail: impl std::fmt::Display) -> Self {
        let message = format!("The cloud LLM is unavailable: {detail}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message).with_code("cloud_unavailable")
    }

    /// A cloud failure: a request the cloud refused (4xx) comes back as the cloud answered it
    /// ([`ApiError::from_upstream`]); anything else makes the cloud unavailable (503).
    pub fn from_cloud(error: &BackendError) -> Self {
        match error {
            BackendError::Status { status, body } if (400..500).contains(status) => {
                Self::from_upstream(*status, body.as_bytes())
            }
            _ => Self::cloud_unavailable(error),
        }
    }

    /// The cloud server's own 4xx: its status and its error, read from OpenAI's shape
    /// (`{"error": {...}}`) or the flat shape some servers use (`{"message", "type", ...}`);
    /// a body that is neither becomes the message. A status outside 4xx is a 503.
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        let Some(status) = StatusCode::from_u16(status).ok().filter(StatusCode::is_client_error) else {
            let text = String::from_utf8_lossy(body);
            return Self::cloud_unavailable(format!("it answered HTTP {status}: {}", text.trim()));
        };
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let fields =
            parsed.as_ref().map(|value| value.get("error").filter(|e| e.is_object()).unwrap_or(value));
        let text = |name: &str| fields.and_then(|f| f.get(name)).and_then(Value::as_str).map(str::to_owned);
        let code = fields.and_then(|f| f.get("code")).and_then(|code| match code {
            Value::String(code) => Some(code.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        });
        let message = text("message").unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        let detail = ErrorDetail {
            message,
            kind: text("type").unwrap_or_else(|| "invalid_request_error".to_owned()),
            param: text("param"),
            code,
        };
        Self { status, detail: Box::new(detail), retry_after: None }
    }

    /// The body, also sent as the data of an SSE error event once a stream has started.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: (*self.detail).clone() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_body_has_openais_four_fields_with_nulls() {
        let body = serde_json::to_value(ApiError::invalid_request("bad", None).body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}})
        );
        let body = serde_json::to_value(ApiError::model_not_found("gpt-9").body()).unwrap();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
    }

    #[test]
    fn statuses_match_the_kind_of_error() {
        assert_eq!(ApiError::invalid_api_key("no").status, StatusCode::UNAUTHORIZED);
        assert_eq!(ApiError::body_too_large(10).status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(ApiError::cloud_unavailable("refused").status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::unknown_url("GET", "/v2").status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_cloud_refusal_is_the_clients_error_and_an_overload_or_outage_is_503() {
        let refusal = BackendError::Status { status: 400, body: "max_tokens too large".into() };
        let error = ApiError::from_cloud(&refusal);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.detail.message.contains("max_tokens too large"));
        let busy = BackendError::Status { status: 429, body: String::new() };
        assert_eq!(ApiError::from_cloud(&busy).status, StatusCode::TOO_MANY_REQUESTS);
        let down = BackendError::Status { status: 500, body: "oops".into() };
        assert_eq!(ApiError::from_cloud(&down).status, StatusCode::SERVICE_UNAVAILABLE);
        let broken = BackendError::Stream("reset".into());
        assert_eq!(ApiError::from_cloud(&broken).detail.code.as_deref(), Some("cloud_unavailable"));
    }

    #[test]
    fn an_upstream_error_keeps_its_status_and_fields_in_either_shape() {
        let nested = br#"{"error": {"message": "too long", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}"#;
        let error = ApiError::from_upstream(400, nested);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.detail.message, "too long");
        assert_eq!(error.detail.param.as_deref(), Some("messages"));
        assert_eq!(error.detail.code.as_deref(), Some("context_length_exceeded"));
        let flat = br#"{"object": "error", "message": "bad top_p", "type": "BadRequestError", "code": 400}"#;
        let error = ApiError::from_upstream(422, flat);
        assert_eq!((error.status.as_u16(), error.detail.kind.as_str()), (422, "BadRequestError"));
        assert_eq!((error.detail.message.as_str(), error.detail.code.as_deref()), ("bad top_p", Some("400")));
        let plain = ApiError::from_upstream(400, b"no such thing");
        assert_eq!(plain.detail.message, "no such thing");
    }
}
