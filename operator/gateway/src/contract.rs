//! Which requests progressive mode can answer without breaking OpenAI's contract.
//!
//! A progressive answer is one plain-text choice written from a sketch, so it can honour the
//! conversation, the token budget, streaming and the sampling parameters, and nothing that
//! changes the answer's shape: tools, structured output, several choices, log-probabilities,
//! audio or images, or any field this gateway does not know. Such a request is answered
//! cloud-only, passed through whole; the first field that kept it off the progressive path is
//! its reason (in the `pice` field and the metrics).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::render::Flavor;
use super::request::RawBody;

/// Fields a progressive answer honours (the sampling ones apply to the sketch and to every
/// expansion; `user` goes with the sketch request).
const HONOURED: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "user",
];

/// The metrics label of every field that can keep a request off the progressive path; any
/// other field is counted as `other` (the label set stays bounded).
pub const FIELD_LABELS: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "n",
    "best_of",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "modalities",
    "prediction",
    "messages",
    "echo",
    "suffix",
    "other",
];

/// The field that keeps a request cloud-only, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The field as the client named it.
    pub field: String,
    /// What about it a progressive answer cannot keep.
    pub why: &'static str,
}

impl Blocker {
    fn new(field: &str, why: &'static str) -> Self {
        Self { field: field.to_owned(), why }
    }

    /// The field as a metrics label: its name when it is a known one, else `other`.
    pub fn label(&self) -> &'static str {
        FIELD_LABELS.iter().find(|label| **label == self.field).copied().unwrap_or("other")
    }
}

/// The first field of `body` (in name order) a progressive answer cannot honour, if any. A
/// field set to `null` or to its default counts as absent. Only fields that may block are read
/// into values; the honoured ones stay as the client's bytes.
pub fn blocker(body: &RawBody, flavor: Flavor) -> Option<Blocker> {
    body.iter().filter(|(name, raw)| raw.get() != "null" && !always_honoured(name)).find_map(|(name, raw)| {
        if name == "messages" {
            return messages_blocker(raw);
        }
        let value: Value = serde_json::from_str(raw.get()).ok()?;
        field_blocker(name, &value, flavor)
    })
}

/// Whether any value of this field is honoured (`messages` depends on what they hold).
fn always_honoured(name: &str) -> bool {
    name != "messages" && HONOURED.contains(&name)
}

fn field_blocker(name: &str, value: &Value, flavor: Flavor) -> Option<Blocker> {
    let blocked = |why| Some(Blocker::new(name, why));
    match name {
        "tools" | "functions" if non_empty(value) => blocked("it offers the model tools to call"),
        "tool_choice" | "function_call" if value != "none" => blocked("it asks the model to call a tool"),
        "tools" | "functions" | "tool_choice" | "function_call" | "parallel_tool_calls" => None,
        "response_format" if value.get("type").and_then(Value::as_str) != Some("text") => {
            blocked("it asks for structured output, not text")
        }
        "n" | "best_of" if value.as_u64() != Some(1) => blocked("it asks for more than one choice"),
        "logprobs" if flavor == Flavor::Chat && value == &Value::Bool(false) => None,
        "logprobs" | "top_logprobs" => blocked("it asks for token log-probabilities"),
        "logit_bias" if non_empty(value) => blocked("it biases token ids of the cloud model's vocabulary"),
        "audio" => blocked("it asks for audio"),
        "modalities" if value != &serde_json::json!(["text"]) => {
            blocked("it asks for output other than text")
        }
        "prediction" => blocked("it gives a predicted output"),
        "echo" if value != &Value::Bool(false) => blocked("it asks for the prompt to be echoed"),
        "suffix" if value.as_str().is_some_and(|suffix| !suffix.is_empty()) => blocked("it gives a suffix"),
        "response_format" | "n" | "best_of" | "logit_bias" | "modalities" | "echo" | "suffix" => None,
        _ if HONOURED.contains(&name) => None,
        _ => blocked("the gateway cannot apply this field to a sketch and its expansions"),
    }
}

/// Messages a sketch cannot carry: tool calls and results, content other than text, and an
/// assistant turn to continue. Read as a light view of each message, not as values: the
/// conversation may be long.
fn messages_blocker(messages: &RawValue) -> Option<Blocker> {
    let messages: Vec<MessageShape<'_>> = serde_json::from_str(messages.get()).ok()?;
    let blocked = |why| Some(Blocker::new("messages", why));
    for message in &messages {
        let role = message.role.as_deref().unwrap_or_default();
        if matches!(role, "tool" | "function")
            || message.tool_calls.as_ref().is_some_and(|calls| !calls.is_empty())
        {
            return blocked("the conversation holds tool calls or their results");
        }
        if message.content.is_some_and(|content| !text_only(content)) {
            return blocked("a message holds content other than text (an image, audio or a file)");
        }
    }
    if messages.last().and_then(|m| m.role.as_deref()) == Some("assistant") {
        return blocked("the conversation ends with an assistant turn to continue");
    }
    None
}

/// Whether message content is text: a string, or parts that are all of type `text`.
fn text_only(content: &RawValue) -> bool {
    if !content.get().starts_with('[') {
        return true;
    }
    let parts: Vec<PartShape<'_>> = serde_json::from_str(content.get()).unwrap_or_default();
    parts.iter().all(|part| part.kind.as_deref() == Some("text"))
}

/// What the contract reads of a message.
#[derive(Deserialize)]
struct MessageShape<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<IgnoredAny>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// What the contract reads of a content part.
#[derive(Deserialize)]
struct PartShape<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

fn non_empty(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    /// `body` as the gateway reads it: field by field, as sent.
    fn raw(body: &Value) -> RawBody {
        serde_json::from_str(&body.to_string()).unwrap()
    }

    fn chat(extra: Value) -> Option<Blocker> {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        blocker(&raw(&body), Flavor::Chat)
    }

    fn field(extra: Value) -> Option<String> {
        chat(extra).map(|blocker| blocker.field)
    }

    #[test]
    fn plain_requests_and_sampling_parameters_stay_progressive() {
        let sampling = json!({"temperature": 0.3, "top_p": 0.9, "seed": 4, "presence_penalty": 0.1,
            "frequency_penalty": 0.2, "stop": ["\n\n"], "max_tokens": 100, "stream": true,
            "stream_options": {"include_usage": true}, "user": "u-1", "max_completion_tokens": 90});
        assert_eq!(chat(sampling), None);
    }

    #[test]
    fn defaults_and_nulls_count_as_absent() {
        let defaults = json!({"n": 1, "logprobs": false, "response_format": {"type": "text"},
            "tools": [], "tool_choice": "none", "logit_bias": {}, "modalities": ["text"],
            "audio": null, "top_logprobs": null, "parallel_tool_calls": true});
        assert_eq!(chat(defaults), None);
    }

    #[test]
    fn shape_changing_fields_are_named() {
        let tool = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
        assert_eq!(field(json!({"tools": tool})).as_deref(), Some("tools"));
        assert_eq!(field(json!({"tool_choice": "required"})).as_deref(), Some("tool_choice"));
        assert_eq!(
            field(json!({"response_format": {"type": "json_object"}})).as_deref(),
            Some("response_format")
        );
        assert_eq!(field(json!({"n": 3})).as_deref(), Some("n"));
        assert_eq!(field(json!({"logprobs": true})).as_deref(), Some("logprobs"));
        assert_eq!(field(json!({"top_logprobs": 2})).as_deref(), Some("top_logprobs"));
        assert_eq!(field(json!({"logit_bias": {"50256": -100}})).as_deref(), Some("logit_bias"));
        assert_eq!(field(json!({"modalities": ["text", "audio"]})).as_deref(), Some("modalities"));
        assert_eq!(field(json!({"audio": {"voice": "alloy"}})).as_deref(), Some("audio"));
    }

    #[test]
    fn unknown_fields_are_named_and_counted_as_other() {
        let blocker = chat(json!({"reasoning_effort": "low"})).unwrap();
        assert_eq!((blocker.field.as_str(), blocker.label()), ("reasoning_effort", "other"));
        assert_eq!(chat(json!({"n": 2})).unwrap().label(), "n");
    }

    #[test]
    fn tool_turns_and_images_in_the_conversation_keep_it_on_the_cloud() {
        let tool_turn = json!({"messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function"}]},
            {"role": "tool", "tool_call_id": "1", "content": "sunny"}]});
        assert_eq!(field(tool_turn).as_deref(), Some("messages"));
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "x"}}]}]});
        assert_eq!(field(image).as_deref(), Some("messages"));
        let text_parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
        assert_eq!(field(text_parts), None);
    }

    #[test]
    fn text_completions_block_echo_suffix_and_logprobs() {
        let body = |extra: Value| {
            let mut body = json!({"model": "m", "prompt": "Hi"});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            blocker(&raw(&body), Flavor::Text).map(|b| b.field)
        };
        assert_eq!(body(json!({"echo": false, "suffix": "", "best_of": 1})), None);
        assert_eq!(body(json!({"echo": true})).as_deref(), Some("echo"));
        assert_eq!(body(json!({"logprobs": 0})).as_deref(), Some("logprobs"));
        assert_eq!(body(json!({"best_of": 2})).as_deref(), Some("best_of"));
    }
}
