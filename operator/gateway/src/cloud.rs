//! The cloud LLM client: the pool's OpenAI-compatible server, for streamed chat completions
//! (sketches, and point expansions when the edge fails) and for passing cloud-only requests
//! through, by the edge agent's OpenAI backend so both speak the wire format through one
//! implementation.

use pice_wire::generation::{BackendError, GenerationStream, ModelBackend};
use pice_wire::openai_client::{ChatOptions, OpenAiBackend};
use pice_wire::openai_wire::ChatMessage;

use pice_api::gateway_config::CloudTarget;

/// The cloud LLM of one pool.
#[derive(Clone, Debug)]
pub struct CloudClient {
    backend: OpenAiBackend,
    model: String,
}

impl CloudClient {
    /// A client for `target` (its URL ends before `/v1`).
    pub fn new(target: &CloudTarget) -> Result<Self, BackendError> {
        let api_root = format!("{}/v1", target.url.trim_end_matches('/'));
        Ok(Self {
            backend: OpenAiBackend::new(&api_root, target.model.clone())?,
            model: target.model.clone(),
        })
    }

    /// The model name sent to the cloud.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Starts a streamed completion of `messages`.
    pub async fn chat(
        &self,
        messages: Vec<ChatMessage>,
        options: ChatOptions,
    ) -> Result<GenerationStream, BackendError> {
        self.backend.chat(messages, options).await
    }

    /// Sends a client's request body as it is to `path` (`/chat/completions`,
    /// `/completions`) and gives the server's response whatever its status.
    pub async fn post_json(
        &self,
        path: &str,
        body: &(impl serde::Serialize + Sync),
    ) -> Result<reqwest::Response, BackendError> {
        self.backend.post_json(path, body).await
    }

    /// The backend, for expanding a point on the cloud with the same prompt the edge gets.
    pub fn expander(&self) -> &dyn ModelBackend {
        &self.backend
    }

    /// Whether the cloud server answers `GET /v1/models`.
    pub async fn ready(&self) -> bool {
        self.backend.ready().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_api_root_is_the_target_url_with_v1() {
        let target = CloudTarget { url: "http://llm.ns.svc:8000/".into(), model: "llama".into() };
        assert_eq!(CloudClient::new(&target).unwrap().model(), "llama");
        assert!(CloudClient::new(&CloudTarget { url: "llm:8000".into(), model: "m".into() }).is_err());
    }
}
