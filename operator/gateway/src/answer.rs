//! An answer in the making, whichever mode writes it: the request both modes serve, the events
//! they produce (text in final order, then one end or failure) and the `pice` summary that
//! tells the client how the answer was made.

use futures::stream::BoxStream;
use pice_wire::generation::Sampling;
use pice_wire::openai_wire::{ChatMessage, Usage};
use pice_wire::prompt::ClientContext;
use serde::Serialize;

use super::contract::Blocker;
use super::error::ApiError;
use super::mode::{Decision, Reason};
use super::render::Flavor;
use super::request::RawBody;
use pice_api::RoutingMode;

/// What the gateway answers, after validation.
#[derive(Clone, Debug)]
pub struct AnswerRequest {
    /// The request's JSON body as the client sent it: a cloud-only answer passes it through.
    pub body: RawBody,
    /// Which API it came to.
    pub flavor: Flavor,
    /// The model name the client asked for; answers carry it back.
    pub model: String,
    /// The last user message: what the classifier reads and the sketch answers.
    pub question: String,
    /// The client's own instructions (its system and developer messages, joined).
    pub instructions: String,
    /// The turns before the question, oldest first, within the context budget.
    pub earlier: Vec<ChatMessage>,
    /// Whether the messages continue a conversation (an assistant turn is present).
    pub conversation: bool,
    /// Token budget of the whole answer (defaulted and capped).
    pub max_tokens: u32,
    pub seed: Option<u64>,
    /// The client's sampling parameters, for the sketch and every expansion.
    pub sampling: Sampling,
    /// OpenAI's `user` (the client's end user), sent with the sketch request.
    pub user: Option<String>,
    /// The first field a progressive answer cannot honour, if any.
    pub blocker: Option<Blocker>,
    /// The mode asked for: the request's `x-pice-mode` header or the pool's mode.
    pub requested: RoutingMode,
    /// Whether the client reads the answer as it is written (`stream: true`).
    pub streamed: bool,
    /// Whether a streamed answer ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

impl AnswerRequest {
    /// The client's context as the prompts use it.
    pub fn context(&self) -> ClientContext<'_> {
        ClientContext { instructions: &self.instructions, earlier: &self.earlier }
    }
}

/// How an answer was made; sent as the `pice` field of responses and final chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PiceInfo {
    /// The mode that ran: `cloud` or `progressive`.
    pub mode: &'static str,
    /// The mode asked for: `auto`, `cloud` or `progressive`.
    pub requested: &'static str,
    /// Why the mode was chosen (see [`super::mode::Reason`]).
    pub reason: &'static str,
    /// The field that kept the request cloud-only (reason `contract`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Points in the sketch (0 in cloud-only mode).
    pub points: usize,
    /// Fallback steps taken (failed edge attempts, an empty sketch, ...).
    pub fallbacks: u32,
    /// Whether some point could only be given as its sketch line.
    pub degraded: bool,
    /// Tokens the cloud generated for this answer (sketch included).
    pub cloud_tokens: u32,
    /// Tokens the edge generated (every ensemble candidate included).
    pub edge_tokens: u32,
    /// Prompt tokens the cloud read for this answer (the sketch's and any expansion's).
    pub cloud_prompt_tokens: u32,
    /// Prompt tokens the edge read (one prompt per expansion it finished).
    pub edge_prompt_tokens: u32,
}

impl PiceInfo {
    /// The summary of an answer made as `decision` says, before anything was generated.
    pub fn new(decision: Decision, requested: RoutingMode, blocker: Option<&Blocker>) -> Self {
        Self {
            mode: decision.mode.as_str(),
            requested: requested.as_str(),
            reason: decision.reason.as_str(),
            field: blocker.filter(|_| decision.reason == Reason::Contract).map(|b| b.field.clone()),
            points: 0,
            fallbacks: 0,
            degraded: false,
            cloud_tokens: 0,
            edge_tokens: 0,
            cloud_prompt_tokens: 0,
            edge_prompt_tokens: 0,
        }
    }

    /// OpenAI's `usage` of the answer: every token either tier read and wrote for it.
    pub fn usage(&self) -> Usage {
        let prompt = self.cloud_prompt_tokens.saturating_add(self.edge_prompt_tokens);
        usage(prompt, self.cloud_tokens.saturating_add(self.edge_tokens))
    }
}

/// How an answer ended; its `usage` is [`PiceInfo::usage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerEnd {
    /// OpenAI's `finish_reason`: `stop` or `length`.
    pub finish_reason: &'static str,
    pub pice: PiceInfo,
}

/// One step of an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AnswerEvent {
    /// Text to append to the answer.
    Text(String),
    /// The answer is complete.
    End(AnswerEnd),
    /// The answer broke off (the cloud failed mid-stream).
    Failed(ApiError),
}

/// An answer whose first step succeeded: the mode that runs and its events.
pub struct Answer {
    /// `Cloud` or `Progressive`.
    pub mode: RoutingMode,
    pub events: BoxStream<'static, AnswerEvent>,
}

/// OpenAI usage from token counts.
pub fn usage(prompt_tokens: u32, completion_tokens: u32) -> Usage {
    Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens.saturating_add(completion_tokens) }
}
