//! The cloud LLM client: the pool's OpenAI-compatible server, for streamed chat completions
//! (sketches, and point expansions when the edge fails) and for passing cloud-only requests
//! through, by the edge agent's OpenAI backend so both speak the wire format through one
//! implementation.

use futures::StreamExt;
use pice_wire::generation::{BackendError, GenerationEvent, GenerationStream, ModelBackend, Usage};
use pice_wire::openai_client::{ChatOptions, OpenAiBackend};
use pice_wire::openai_wire::ChatMessage;

use super::estimates::{Stopwatch, Timing};
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

/// A whole generation: its text, usage and timing.
#[derive(Clone, Debug, PartialEq)]
pub struct Collected {
    pub text: String,
    pub usage: Usage,
    pub timing: Timing,
}

/// Reads a generation to its end; `watch` was started when the request was sent.
pub async fn collect(mut stream: GenerationStream, mut watch: Stopwatch) -> Result<Collected, BackendError> {
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            GenerationEvent::Text(delta) => {
                watch.text();
                text.push_str(&delta);
            }
            GenerationEvent::Finished(usage) => {
                let timing = watch.finish(usage.completion_tokens);
                return Ok(Collected { text, usage, timing });
            }
        }
    }
    Err(BackendError::Stream("the stream ended without finishing".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use pice_wire::generation::FinishReason;

    use super::*;

    #[tokio::test]
    async fn collect_joins_the_text_and_keeps_the_usage() {
        let usage = Usage {
            finish_reason: FinishReason::Stop,
            prompt_tokens: 5,
            completion_tokens: 2,
            mean_logprob: None,
        };
        let events = vec![
            Ok(GenerationEvent::Text("1. A".into())),
            Ok(GenerationEvent::Text("\n2. B".into())),
            Ok(GenerationEvent::Finished(usage)),
        ];
        let collected = collect(futures::stream::iter(events).boxed(), Stopwatch::start()).await.unwrap();
        assert_eq!(collected.text, "1. A\n2. B");
        assert_eq!((collected.usage, collected.timing.tokens), (usage, 2));
    }

    #[tokio::test]
    async fn a_stream_that_stops_early_is_an_error() {
        let events = vec![Ok(GenerationEvent::Text("1. A".into()))];
        let error = collect(futures::stream::iter(events).boxed(), Stopwatch::start()).await.unwrap_err();
        assert!(error.to_string().contains("without finishing"));
    }

    #[test]
    fn the_api_root_is_the_target_url_with_v1() {
        let target = CloudTarget { url: "http://llm.ns.svc:8000/".into(), model: "llama".into() };
        assert_eq!(CloudClient::new(&target).unwrap().model(), "llama");
        assert!(CloudClient::new(&CloudTarget { url: "llm:8000".into(), model: "m".into() }).is_err());
    }
}
