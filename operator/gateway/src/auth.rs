//! Optional API keys: when any are configured, `/v1/*` requests need
//! `Authorization: Bearer <key>` with one of them. Keys come from a file (one per line, `#`
//! starts a comment; a mounted Secret) and/or a comma-separated environment variable.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::metrics::GatewayMetrics;

/// The accepted keys; empty means no authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Arc<[String]>,
}

impl ApiKeys {
    /// Reads the keys from `file` and `inline` (comma-separated), either optional.
    pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<Self, String> {
        let mut keys: Vec<String> = inline.map(|text| split(text, ',')).unwrap_or_default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read API keys from {}: {e}", path.display()))?;
            let lines = text.lines().map(|line| line.split('#').next().unwrap_or_default());
            keys.extend(lines.flat_map(|line| split(line, ',')));
        }
        Ok(Self { keys: keys.into() })
    }

    /// Whether requests must carry a key.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(header) = authorization else {
            return Err(ApiError::invalid_api_key(
                "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
            ));
        };
        let presented = header.strip_prefix("Bearer ").unwrap_or_default().trim();
        let matches = self.keys.iter().fold(false, |found, key| found | constant_time_eq(key, presented));
        if matches { Ok(()) } else { Err(ApiError::invalid_api_key("Incorrect API key provided.")) }
    }
}

fn split(text: &str, separator: char) -> Vec<String> {
    text.split(separator).map(str::trim).filter(|key| !key.is_empty()).map(str::to_owned).collect()
}

/// Compares without returning early on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Middleware state: the keys and the metrics that count refusals.
#[derive(Clone)]
pub struct Guard {
    pub keys: ApiKeys,
    pub metrics: GatewayMetrics,
}

/// Axum middleware: refuses requests without a valid key (401 in OpenAI's error shape).
pub async fn require_key(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match guard.keys.check(header) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            guard.metrics.rejected();
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn without_keys_everything_passes() {
        let keys = ApiKeys::load(None, None).unwrap();
        assert!(!keys.enabled());
        assert!(keys.check(None).is_ok());
    }

    #[test]
    fn keys_from_file_and_env_are_both_accepted_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# team keys\nsk-file-1\n\n  sk-file-2  # rotated in May\n").unwrap();
        let keys = ApiKeys::load(Some(&file), Some("sk-env-1, sk-env-2")).unwrap();
        for key in ["sk-file-1", "sk-file-2", "sk-env-1", "sk-env-2"] {
            assert!(keys.check(Some(&format!("Bearer {key}"))).is_ok(), "{key}");
        }
        let wrong = keys.check(Some("Bearer sk-file")).unwrap_err();
        assert_eq!((wrong.status.as_u16(), wrong.detail.code.as_deref()), (401, Some("invalid_api_key")));
        assert!(keys.check(Some("sk-file-1")).is_err(), "the Bearer scheme is required");
        assert!(keys.check(None).unwrap_err().detail.message.contains("didn't provide an API key"));
    }

    #[test]
    fn a_missing_key_file_is_an_error_that_names_it() {
        let error = ApiKeys::load(Some(Path::new("/nonexistent/keys")), None).unwrap_err();
        assert!(error.contains("/nonexistent/keys"));
    }
}
