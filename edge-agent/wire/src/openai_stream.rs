//! Reads a streamed OpenAI chat completion (SSE) into generation events.

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::generation::{BackendError, FinishReason, GenerationEvent, Usage};
use crate::openai_wire::{self, ChatCompletionChunk, ErrorBody};
use crate::sse::SseDecoder;

/// Turns the response body of a `stream: true` chat completion into text deltas and a final
/// [`GenerationEvent::Finished`]. Servers that send no `usage` get their completion tokens
/// counted as content deltas (one token per delta, which vLLM and llama.cpp do).
pub fn generation_events<S>(
    body: S,
    want_logprobs: bool,
) -> impl Stream<Item = Result<GenerationEvent, BackendError>> + Send + 'static
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    async_stream::stream! {
        let mut decoder = SseDecoder::default();
        let mut tally = Tally::new(want_logprobs);
        futures::pin_mut!(body);
        while let Some(bytes) = body.next().await {
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(error) => {
                    yield Err(BackendError::Stream(error.to_string()));
                    return;
                }
            };
            for data in decoder.push(&bytes) {
                match tally.read(&data) {
                    Ok(Read::Text(text)) => yield Ok(GenerationEvent::Text(text)),
                    Ok(Read::Nothing) => {}
                    Ok(Read::Done) => {
                        yield tally.finish();
                        return;
                    }
                    Err(error) => {
                        yield Err(error);
                        return;
                    }
                }
            }
        }
        if let Some(data) = decoder.finish() {
            match tally.read(&data) {
                Ok(Read::Text(text)) => yield Ok(GenerationEvent::Text(text)),
                Ok(_) => {}
                Err(error) => {
                    yield Err(error);
                    return;
                }
            }
        }
        yield tally.finish();
    }
}

/// What one SSE payload meant.
#[derive(Debug, PartialEq)]
enum Read {
    Text(String),
    Nothing,
    Done,
}

/// What the stream has said so far about how it ends.
#[derive(Debug)]
struct Tally {
    want_logprobs: bool,
    finish_reason: Option<FinishReason>,
    usage: Option<openai_wire::Usage>,
    deltas: u32,
    logprob_sum: f64,
    logprob_count: u32,
}

impl Tally {
    fn new(want_logprobs: bool) -> Self {
        Self {
            want_logprobs,
            finish_reason: None,
            usage: None,
            deltas: 0,
            logprob_sum: 0.0,
            logprob_count: 0,
        }
    }

    fn read(&mut self, data: &str) -> Result<Read, BackendError> {
        if data.trim() == "[DONE]" {
            return Ok(Read::Done);
        }
        let chunk: ChatCompletionChunk = serde_json::from_str(data)
            .map_err(|e| BackendError::Protocol(format!("{e}: {}", truncate(data))))?;
        if chunk.choices.is_empty() && chunk.usage.is_none() {
            return Err(stream_error(data));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(Read::Nothing);
        };
        for token in choice.logprobs.and_then(|l| l.content).unwrap_or_default() {
            self.logprob_sum += token.logprob;
            self.logprob_count += 1;
        }
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(FinishReason::from_openai(&reason));
        }
        match choice.delta.content {
            Some(text) if !text.is_empty() => {
                self.deltas += 1;
                Ok(Read::Text(text))
            }
            _ => Ok(Read::Nothing),
        }
    }

    fn finish(&self) -> Result<GenerationEvent, BackendError> {
        let finish_reason = self
            .finish_reason
            .ok_or_else(|| BackendError::Stream("the stream ended before a finish reason".to_owned()))?;
        let mean_logprob = (self.want_logprobs && self.logprob_count > 0)
            .then(|| self.logprob_sum / f64::from(self.logprob_count));
        Ok(GenerationEvent::Finished(Usage {
            finish_reason,
            prompt_tokens: self.usage.map_or(0, |u| u.prompt_tokens),
            completion_tokens: self.usage.map_or(self.deltas, |u| u.completion_tokens),
            mean_logprob,
        }))
    }
}

/// A payload that is not a chunk: servers report mid-stream failures as an OpenAI error body.
fn stream_error(data: &str) -> BackendError {
    match serde_json::from_str::<ErrorBody>(data) {
        Ok(body) if !body.error.message.is_empty() => BackendError::Stream(body.error.message),
        _ => BackendError::Protocol(format!("a chunk without choices: {}", truncate(data))),
    }
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn events(body: &'static str, want_logprobs: bool) -> Vec<Result<GenerationEvent, String>> {
        let chunks = body.as_bytes().chunks(7).map(|c| Ok(Bytes::from_static(c)));
        generation_events(futures::stream::iter(chunks.collect::<Vec<_>>()), want_logprobs)
            .map(|e| e.map_err(|e| e.to_string()))
            .collect()
            .await
    }

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},",
        "\"logprobs\":{\"content\":[{\"token\":\"Hello\",\"logprob\":-0.5}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},",
        "\"logprobs\":{\"content\":[{\"token\":\" world\",\"logprob\":-1.5}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}\n\n",
        "data: [DONE]\n\n",
    );

    #[tokio::test]
    async fn text_usage_and_mean_logprob_come_out_of_a_full_stream() {
        let events = events(STREAM, true).await;
        assert_eq!(events[0], Ok(GenerationEvent::Text("Hello".into())));
        assert_eq!(events[1], Ok(GenerationEvent::Text(" world".into())));
        let finished = Usage {
            finish_reason: FinishReason::Length,
            prompt_tokens: 12,
            completion_tokens: 2,
            mean_logprob: Some(-1.0),
        };
        assert_eq!(events[2], Ok(GenerationEvent::Finished(finished)));
        assert_eq!(events.len(), 3);
    }

    #[tokio::test]
    async fn without_usage_deltas_are_counted_and_unrequested_logprobs_dropped() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        let events = events(body, false).await;
        let Ok(GenerationEvent::Finished(usage)) = &events[2] else { panic!("{events:?}") };
        assert_eq!((usage.completion_tokens, usage.mean_logprob), (2, None));
        assert_eq!(usage.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn a_stream_cut_before_its_finish_reason_is_an_error() {
        let events =
            events("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n", false).await;
        assert!(events[1].as_ref().unwrap_err().contains("before a finish reason"));
    }

    #[tokio::test]
    async fn a_mid_stream_error_body_is_reported_with_its_message() {
        let events = events("data: {\"error\":{\"message\":\"out of memory\"}}\n\n", false).await;
        assert_eq!(events, vec![Err("model server stream failed: out of memory".into())]);
    }
}
