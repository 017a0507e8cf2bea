//! The gateway's API error: an HTTP status and OpenAI's error body
//! (`{"error": {"message", "type", "param", "code"}}`), so SDKs raise their usual exceptions.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pice_wire::generation::BackendError;
use pice_wire::openai_wire::{ErrorBody, ErrorDetail};

/// An error answered to an API client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error` (4xx) or `server_error` (5xx).
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), kind, param: None, code: None }
    }

    /// 400: the request is malformed or misses a field (`param` names it).
    pub fn invalid_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self { param, ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message) }
    }

    /// 401: no API key or a wrong one.
    pub fn invalid_api_key(message: impl Into<String>) -> Self {
        Self {
            code: Some("invalid_api_key"),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
        }
    }

    /// 404: the pool serves no model of that name.
    pub fn model_not_found(model: &str) -> Self {
        let message = format!("The model `{model}` does not exist or you do not have access to it.");
        Self {
            param: Some("model"),
            code: Some("model_not_found"),
            ..Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
        }
    }

    /// 404: no such route.
    pub fn unknown_url(method: &str, path: &str) -> Self {
        let message = format!("Invalid URL ({method} {path})");
        Self {
            code: Some("unknown_url"),
            ..Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
        }
    }

    /// 413: the body is over the gateway's limit.
    pub fn body_too_large(limit: usize) -> Self {
        let message = format!("The request body is larger than this gateway's limit of {limit} bytes.");
        Self {
            code: Some("request_too_large"),
            ..Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", message)
        }
    }

    /// 503: the cloud LLM cannot be reached or failed before answering.
    pub fn cloud_unavailable(detail: impl std::fmt::Display) -> Self {
        let message = format!("The cloud LLM is unavailable: {detail}");
        Self {
            code: Some("cloud_unavailable"),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
        }
    }

    /// A cloud failure: a request the cloud refused (4xx other than 429) is the client's
    /// problem (400), anything else makes the cloud unavailable (503).
    pub fn from_cloud(error: &BackendError) -> Self {
        match error {
            BackendError::Status { status, body } if (400..500).contains(status) && *status != 429 => {
                Self::invalid_request(format!("The cloud LLM refused the request: {body}"), None)
            }
            _ => Self::cloud_unavailable(error),
        }
    }

    /// The body, also sent as the data of an SSE error event once a stream has started.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_owned(),
                param: self.param.map(str::to_owned),
                code: self.code.map(str::to_owned),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
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
        assert!(error.message.contains("max_tokens too large"));
        let busy = BackendError::Status { status: 429, body: String::new() };
        assert_eq!(ApiError::from_cloud(&busy).status, StatusCode::SERVICE_UNAVAILABLE);
        let broken = BackendError::Stream("reset".into());
        assert_eq!(ApiError::from_cloud(&broken).code, Some("cloud_unavailable"));
    }
}
