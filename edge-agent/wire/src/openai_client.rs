//! The OpenAI-HTTP backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp
//! `llama-server`, Ollama, TGI, `pice-sim`) through chat completions, streamed or whole.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::generation::{
    BackendError, ExpansionRequest, FinishReason, GenerationEvent, GenerationStream, ModelBackend, Sampling,
    Usage,
};
use crate::openai_stream::generation_events;
use crate::openai_wire::{ChatCompletion, ChatCompletionRequest, ChatMessage, Stop, StreamOptions};
use crate::{crypto, prompt};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Sampling options of one streamed chat completion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatOptions {
    /// Token budget; `None` leaves it to the server.
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
    pub want_logprobs: bool,
    pub sampling: Sampling,
    /// The end user the client names (OpenAI's `user`), passed on as it is.
    pub user: Option<String>,
}

/// A model served over OpenAI's chat-completions API.
#[derive(Clone, Debug)]
pub struct OpenAiBackend {
    client: reqwest::Client,
    base_url: String,
    model: String,
    /// Whether chat completions ask the server to keep their prompt's KV cache for the next.
    cache_prompt: bool,
}

impl OpenAiBackend {
    /// `base_url` ends in the API root, e.g. `http://127.0.0.1:8080/v1`; `model` is sent as
    /// the request's `model` (the name the server serves).
    pub fn new(base_url: &str, model: impl Into<String>) -> Result<Self, BackendError> {
        crypto::install_default_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| BackendError::Config(format!("cannot build the HTTP client: {e}")))?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(BackendError::Config(format!(
                "backend URL {base_url:?} must start with http:// or https://"
            )));
        }
        Ok(Self { client, base_url, model: model.into(), cache_prompt: false })
    }

    /// Sends llama.cpp `llama-server`'s `cache_prompt: true` with every chat completion, so the
    /// server reuses the KV cache of the prompt prefix that expansions of one sketch share
    /// (recent `llama-server`s do it by default; other servers ignore the unknown field).
    pub fn with_prompt_cache(mut self, on: bool) -> Self {
        self.cache_prompt = on;
        self
    }

    fn request_body(
        &self,
        messages: Vec<ChatMessage>,
        options: ChatOptions,
        stream: bool,
    ) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: self.model.clone(),
            messages,
            stream,
            max_tokens: options.max_tokens,
            seed: options.seed,
            logprobs: options.want_logprobs,
            // `top_logprobs: 0` with `logprobs`: the sampled token's log-probability only.
            // OpenAI and vLLM return it for `logprobs` alone; llama-cpp-python's server only
            // when `top_logprobs` is set.
            top_logprobs: options.want_logprobs.then_some(0),
            stream_options: stream.then_some(StreamOptions { include_usage: true }),
            temperature: options.sampling.temperature,
            top_p: options.sampling.top_p,
            presence_penalty: options.sampling.presence_penalty,
            frequency_penalty: options.sampling.frequency_penalty,
            stop: Stop::of(&options.sampling.stop),
            user: options.user,
            ..ChatCompletionRequest::default()
        }
    }

    async fn start(&self, request: ExpansionRequest) -> Result<GenerationStream, BackendError> {
        let messages = prompt::expansion_messages(&request);
        let options = ChatOptions {
            max_tokens: Some(request.max_tokens),
            seed: request.seed,
            want_logprobs: request.want_logprobs,
            sampling: request.sampling,
            user: None,
        };
        self.chat(messages, options).await
    }

    /// Streams a chat completion of any `messages` (the gateway's sketches and cloud answers);
    /// resolves once the server has accepted the request.
    pub async fn chat(
        &self,
        messages: Vec<ChatMessage>,
        options: ChatOptions,
    ) -> Result<GenerationStream, BackendError> {
        let want_logprobs = options.want_logprobs;
        let response = self.post(&self.request_body(messages, options, true)).await?;
        let events = generation_events(response.bytes_stream(), want_logprobs);
        Ok(Box::pin(events))
    }

    /// Asks for the whole completion of `messages` at once (`stream: false`) and gives it as a
    /// generation of one text event: for a client that reads the answer whole, the server's
    /// one JSON body costs less to make and to read than a stream of chunks.
    pub async fn complete(
        &self,
        messages: Vec<ChatMessage>,
        options: ChatOptions,
    ) -> Result<GenerationStream, BackendError> {
        let response = self.post(&self.request_body(messages, options, false)).await?;
        let body = response.bytes().await.map_err(|e| BackendError::Stream(e.to_string()))?;
        let completion: ChatCompletion = serde_json::from_slice(&body)
            .map_err(|e| BackendError::Protocol(format!("not an OpenAI chat completion: {e}")))?;
        Ok(futures::stream::iter(whole_completion_events(completion)?.map(Ok)).boxed())
    }

    /// Sends `body` as JSON to `path` under the API root (`/chat/completions`) and gives the
    /// server's response whatever its status: the gateway passes requests through this way.
    pub async fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, BackendError> {
        let url = format!("{}{path}", self.base_url);
        self.client
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|source| BackendError::Unreachable { url, source })
    }

    /// Sends a chat completion request; a status other than success is an error with the
    /// start of the server's body.
    async fn post(&self, body: &ChatCompletionRequest) -> Result<reqwest::Response, BackendError> {
        let body = PromptCached { request: body, cache_prompt: self.cache_prompt };
        let response = self.post_json("/chat/completions", &body).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(BackendError::Status {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        Ok(response)
    }

    async fn answers(&self) -> bool {
        let url = format!("{}/models", self.base_url);
        let response = self.client.get(url).timeout(READY_TIMEOUT).send().await;
        response.is_ok_and(|r| r.status().is_success())
    }
}

/// A chat completion request with llama.cpp's `cache_prompt` beside OpenAI's fields, when on.
#[derive(serde::Serialize)]
struct PromptCached<'a> {
    #[serde(flatten)]
    request: &'a ChatCompletionRequest,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cache_prompt: bool,
}

/// The text and the end of a whole completion; one without usage counts no tokens.
fn whole_completion_events(completion: ChatCompletion) -> Result<[GenerationEvent; 2], BackendError> {
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| BackendError::Protocol("a chat completion without choices".to_owned()))?;
    let usage = completion.usage.unwrap_or_default();
    let finished = Usage {
        finish_reason: FinishReason::from_openai(choice.finish_reason.as_deref().unwrap_or("stop")),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        mean_logprob: None,
    };
    Ok([GenerationEvent::Text(choice.message.text().into_owned()), GenerationEvent::Finished(finished)])
}

impl ModelBackend for OpenAiBackend {
    fn model(&self) -> &str {
        &self.model
    }

    fn generate(&self, request: ExpansionRequest) -> BoxFuture<'_, Result<GenerationStream, BackendError>> {
        self.start(request).boxed()
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        self.answers().boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::openai_wire::Choice;

    fn request() -> ExpansionRequest {
        ExpansionRequest {
            question: "Why do leaves change colour?".into(),
            sketch: vec!["Chlorophyll breaks down".into(), "Carotenoids show".into()],
            point_index: 1,
            max_tokens: 64,
            want_logprobs: true,
            seed: Some(7),
            sampling: Sampling {
                temperature: Some(0.2),
                top_p: Some(0.9),
                presence_penalty: Some(0.5),
                frequency_penalty: Some(-0.5),
                stop: vec!["\n\n".into()],
            },
            ..ExpansionRequest::default()
        }
    }

    #[test]
    fn the_request_streams_with_usage_and_carries_budget_seed_logprobs_and_sampling() {
        let backend = OpenAiBackend::new("http://127.0.0.1:8080/v1/", "qwen").unwrap();
        let request = request();
        let messages = prompt::expansion_messages(&request);
        let options = ChatOptions {
            max_tokens: Some(64),
            seed: Some(7),
            want_logprobs: true,
            sampling: request.sampling.clone(),
            user: None,
        };
        let body =
            serde_json::to_value(backend.request_body(messages.clone(), options.clone(), true)).unwrap();
        assert_eq!(body["temperature"].as_f64().map(|t| (t * 100.0).round()), Some(20.0));
        assert_eq!(body["top_p"].as_f64().map(|t| (t * 100.0).round()), Some(90.0));
        assert_eq!(body["presence_penalty"], 0.5);
        assert_eq!(body["frequency_penalty"], -0.5);
        assert_eq!(body["stop"], serde_json::json!(["\n\n"]));
        assert_eq!(body["model"], "qwen");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!((body["max_tokens"].as_u64(), body["seed"].as_u64()), (Some(64), Some(7)));
        assert_eq!(
            (body["logprobs"].clone(), body["top_logprobs"].clone()),
            (serde_json::json!(true), serde_json::json!(0))
        );
        let user = body["messages"][1]["content"].as_str().unwrap();
        assert!(user.ends_with("Expand only point 2: Carotenoids show"));

        let whole = serde_json::to_value(backend.request_body(messages, options, false)).unwrap();
        assert_eq!(whole["stream"], false);
        assert!(whole.get("stream_options").is_none(), "stream_options is only for streams: {whole}");
    }

    #[test]
    fn a_whole_completion_is_its_text_then_its_end() {
        let completion = ChatCompletion {
            choices: vec![Choice {
                message: ChatMessage::new("assistant", "Tides follow the moon."),
                finish_reason: Some("length".into()),
                ..Choice::default()
            }],
            usage: Some(crate::openai_wire::Usage {
                prompt_tokens: 9,
                completion_tokens: 4,
                total_tokens: 13,
            }),
            ..ChatCompletion::default()
        };
        let [text, end] = whole_completion_events(completion).unwrap();
        assert_eq!(text, GenerationEvent::Text("Tides follow the moon.".into()));
        let expected = Usage {
            finish_reason: FinishReason::Length,
            prompt_tokens: 9,
            completion_tokens: 4,
            mean_logprob: None,
        };
        assert_eq!(end, GenerationEvent::Finished(expected));
        let error = whole_completion_events(ChatCompletion::default()).unwrap_err();
        assert_eq!(error.label(), "protocol");
    }

    #[test]
    fn cache_prompt_is_sent_beside_the_request_only_when_asked_for() {
        let request = ChatCompletionRequest { model: "qwen".into(), ..ChatCompletionRequest::default() };
        let body =
            |cache_prompt| serde_json::to_value(PromptCached { request: &request, cache_prompt }).unwrap();
        assert_eq!((&body(true)["model"], &body(true)["cache_prompt"]), (&"qwen".into(), &true.into()));
        assert!(body(false).get("cache_prompt").is_none(), "{}", body(false));
        assert_eq!(body(false), serde_json::to_value(&request).unwrap());
    }

    #[test]
    fn a_url_without_scheme_is_rejected() {
        let error = OpenAiBackend::new("127.0.0.1:8080/v1", "m").unwrap_err();
        assert!(error.to_string().contains("must start with http://"));
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_not_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        drop(listener);
        let backend = OpenAiBackend::new(&url, "m").unwrap();
        assert!(!backend.ready().await);
        let error = backend.generate(request()).await.err().unwrap();
        assert_eq!(error.label(), "unreachable");
    }
}
