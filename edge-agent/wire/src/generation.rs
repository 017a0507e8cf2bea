//! Generation, the contract between the edge agent and its model backends: what the agent needs
//! from a model server to expand one sketch point.
//!
//! A backend turns an [`ExpansionRequest`] into a stream of [`GenerationEvent`]s: text deltas,
//! then exactly one [`GenerationEvent::Finished`] with the token counts. Dropping the stream
//! stops generation (the HTTP request is aborted, the simulated sequence leaves its batch), which
//! is how the agent passes a caller's cancellation or a missed deadline down to the model.
//!
//! The edge agent's `llama` backend (cargo feature `llama`) runs a GGUF model in-process with the
//! same shape: its engine thread decodes every live generation in one batch and sends each one's
//! pieces into that generation's channel, the receiver is the stream, and a generation whose
//! stream was dropped leaves the batch at the next step.

use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// Sampling parameters a client set for its answer, applied to every generation made for it
/// (the sketch, each expansion). `None` leaves a parameter to the model server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// Sequences that end generation; the text stops before the first one.
    pub stop: Vec<String>,
}

/// One point to expand, with everything the model prompt needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpansionRequest {
    pub question: String,
    /// What else the client said that the expansion needs (its instructions, earlier turns);
    /// empty when there is nothing.
    pub context: String,
    /// The whole sketch, one entry per point.
    pub sketch: Vec<String>,
    /// 0-based index into `sketch`; always within it.
    pub point_index: usize,
    pub max_tokens: u32,
    pub want_logprobs: bool,
    pub seed: Option<u64>,
    pub sampling: Sampling,
    /// The answer this point belongs to: expansions with the same id share their prompt's
    /// prefix, which a backend may decode once. Empty when none is given.
    pub prefix_id: String,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer.
    Stop,
    /// The token budget ran out.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }

    /// Reads OpenAI's `finish_reason`; anything but `length` counts as a normal stop.
    pub fn from_openai(reason: &str) -> Self {
        if reason == "length" { Self::Length } else { Self::Stop }
    }
}

/// The end of a generation: why it ended and what it cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub finish_reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Mean log-probability per generated token, when asked for and available.
    pub mean_logprob: Option<f64>,
}

/// One event of a generation stream.
#[derive(Clone, Debug, PartialEq)]
pub enum GenerationEvent {
    /// Text generated since the previous event.
    Text(String),
    /// The last event of a successful generation.
    Finished(Usage),
}

/// A running generation; dropping it stops the model.
pub type GenerationStream = BoxStream<'static, Result<GenerationEvent, BackendError>>;

/// A model server the agent can ask to expand points.
pub trait ModelBackend: Send + Sync + 'static {
    /// The model name reported in `Load` and used as the metrics label.
    fn model(&self) -> &str;

    /// Starts generating; resolves once the model server has accepted the request.
    fn generate(&self, request: ExpansionRequest) -> BoxFuture<'_, Result<GenerationStream, BackendError>>;

    /// Whether the model server answers now (it may still be loading its weights).
    fn ready(&self) -> BoxFuture<'_, bool>;
}

/// Why a backend could not generate.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("model server at {url} is unreachable: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("model server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("model server stream failed: {0}")]
    Stream(String),
    #[error("model server sent something that is not an OpenAI chunk: {0}")]
    Protocol(String),
    #[error("invalid backend configuration: {0}")]
    Config(String),
    #[error("the in-process model failed: {0}")]
    Model(String),
}

impl BackendError {
    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Status { .. } => "status",
            Self::Stream(_) => "stream",
            Self::Protocol(_) => "protocol",
            Self::Config(_) => "config",
            Self::Model(_) => "model",
        }
    }

    /// Whether the model server said it is too busy (HTTP 429), so another replica should try.
    pub fn is_overload(&self) -> bool {
        matches!(self, Self::Status { status: 429, .. })
    }
}
