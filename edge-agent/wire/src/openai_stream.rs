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

#[cfg(test)]
mod properties {
    //! Property tests: a streamed completion cut anywhere reads as the text, finish reason and
    //! token counts it was written with; garbage and damaged streams end in one error or one
    //! `Finished`, never a panic. `PROPTEST_CASES` sets the number of cases (256 by default).
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// One content delta: its text (possibly empty) and the log-probability sent with it.
    #[derive(Clone, Debug)]
    struct Delta {
        text: String,
        logprob: Option<f64>,
    }

    /// A streamed completion as a server writes it.
    #[derive(Clone, Debug)]
    struct Completion {
        role_chunk: bool,
        deltas: Vec<Delta>,
        finish_reason: String,
        /// The finish reason rides on the last delta rather than on a chunk of its own.
        finish_on_last_delta: bool,
        /// `(prompt_tokens, completion_tokens)` of a final usage chunk.
        usage: Option<(u32, u32)>,
        done: bool,
    }

    /// How the events are written: `data:` or `data: `, LF or CRLF, keep-alive comments, and
    /// whether the last event has its closing blank line.
    #[derive(Clone, Debug)]
    struct Framing {
        space: bool,
        crlf: bool,
        keep_alive: bool,
        last_blank_line: bool,
    }

    fn delta() -> impl Strategy<Value = Delta> {
        // Any characters, multibyte and JSON escapes included; log-probabilities in quarters so
        // that they read back exactly.
        let text = prop_oneof![".{0,6}", "[é中😀\"\\\\\n\t ]{0,4}", any::<String>()];
        (text, prop::option::of((-40i32..=0).prop_map(|q| f64::from(q) / 4.0)))
            .prop_map(|(text, logprob)| Delta { text, logprob })
    }

    fn completion() -> impl Strategy<Value = Completion> {
        (
            any::<bool>(),
            prop::collection::vec(delta(), 0..12),
            prop::sample::select(vec!["stop", "length", "content_filter", "tool_calls"]),
            any::<bool>(),
            // Counts whose total still fits the `u32` of `total_tokens`.
            prop::option::of((0..=u32::MAX / 2, 0..=u32::MAX / 2)),
            any::<bool>(),
        )
            .prop_map(|(role_chunk, deltas, reason, finish_on_last_delta, usage, done)| Completion {
                role_chunk,
                deltas,
                finish_reason: reason.to_owned(),
                finish_on_last_delta,
                usage,
                done,
            })
    }

    fn framing() -> impl Strategy<Value = Framing> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(space, crlf, keep_alive, last_blank_line)| Framing { space, crlf, keep_alive, last_blank_line },
        )
    }

    fn chunk(delta: Value, finish_reason: Option<&str>, logprob: Option<(&str, f64)>) -> String {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish_reason});
        if let Some((token, logprob)) = logprob {
            choice["logprobs"] = json!({"content": [{"token": token, "logprob": logprob}]});
        }
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]})
            .to_string()
    }

    /// The SSE payloads of `completion`, in order.
    fn payloads(completion: &Completion) -> Vec<String> {
        let mut payloads = Vec::new();
        if completion.role_chunk {
            payloads.push(chunk(json!({"role": "assistant", "content": ""}), None, None));
        }
        let finish_alone = !completion.finish_on_last_delta || completion.deltas.is_empty();
        for (i, delta) in completion.deltas.iter().enumerate() {
            let last = i + 1 == completion.deltas.len();
            let reason = (last && !finish_alone).then_some(completion.finish_reason.as_str());
            let logprob = delta.logprob.map(|l| (delta.text.as_str(), l));
            payloads.push(chunk(json!({"content": delta.text}), reason, logprob));
        }
        if finish_alone {
            payloads.push(chunk(json!({}), Some(&completion.finish_reason), None));
        }
        if let Some((prompt, completion)) = completion.usage {
            let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": u64::from(prompt) + u64::from(completion)});
            payloads.push(json!({"id": "c", "choices": [], "usage": usage}).to_string());
        }
        if completion.done {
            payloads.push("[DONE]".to_owned());
        }
        payloads
    }

    /// `payloads` as an SSE body (payloads hold no line ends: JSON escapes them).
    fn body(payloads: &[String], framing: &Framing) -> Vec<u8> {
        let end = if framing.crlf { "\r\n" } else { "\n" };
        let separator = if framing.space { " " } else { "" };
        let mut body = String::new();
        for (i, payload) in payloads.iter().enumerate() {
            if framing.keep_alive {
                body.push_str(&format!(": keep-alive{end}{end}"));
            }
            body.push_str(&format!("data:{separator}{payload}{end}"));
            if i + 1 < payloads.len() || framing.last_blank_line {
                body.push_str(end);
            }
        }
        body.into_bytes()
    }

    /// What a reader of `completion` must see.
    fn expected(completion: &Completion, want_logprobs: bool) -> Vec<Result<GenerationEvent, String>> {
        let texts: Vec<&Delta> = completion.deltas.iter().filter(|d| !d.text.is_empty()).collect();
        let mut events: Vec<_> = texts.iter().map(|d| Ok(GenerationEvent::Text(d.text.clone()))).collect();
        let logprobs: Vec<f64> = completion.deltas.iter().filter_map(|d| d.logprob).collect();
        let deltas = u32::try_from(texts.len()).unwrap();
        let mean_logprob = (want_logprobs && !logprobs.is_empty())
            .then(|| logprobs.iter().sum::<f64>() / f64::from(u32::try_from(logprobs.len()).unwrap()));
        events.push(Ok(GenerationEvent::Finished(Usage {
            finish_reason: FinishReason::from_openai(&completion.finish_reason),
            prompt_tokens: completion.usage.map_or(0, |u| u.0),
            completion_tokens: completion.usage.map_or(deltas, |u| u.1),
            mean_logprob,
        })));
        events
    }

    /// `bytes` cut at `cuts` (positions taken modulo its length).
    fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            chunks.push(Bytes::copy_from_slice(&bytes[start..cut]));
            start = cut;
        }
        chunks
    }

    fn read(chunks: Vec<Bytes>, want_logprobs: bool) -> Vec<Result<GenerationEvent, String>> {
        let body = futures::stream::iter(chunks.into_iter().map(Ok));
        futures::executor::block_on(
            generation_events(body, want_logprobs).map(|e| e.map_err(|e| e.to_string())).collect(),
        )
    }

    /// Text events, then exactly one end: `Finished` or an error, and nothing after it.
    fn ends_once(events: &[Result<GenerationEvent, String>]) -> bool {
        match events.split_last() {
            Some((last, rest)) => {
                !matches!(last, Ok(GenerationEvent::Text(_)))
                    && rest.iter().all(|e| matches!(e, Ok(GenerationEvent::Text(_))))
            }
            None => false,
        }
    }

    /// A payload that is not JSON at all (and not `[DONE]`).
    fn not_json() -> impl Strategy<Value = String> {
        "[^\r\n]{0,40}".prop_filter("JSON or [DONE]", |s| {
            s.trim() != "[DONE]" && serde_json::from_str::<Value>(s).is_err()
        })
    }

    /// JSON that is no chunk: scalars, arrays of scalars, objects without `choices` or `usage`
    /// (an OpenAI error body among them).
    fn not_a_chunk() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        let key = "[a-z_]{1,8}".prop_filter("a chunk's key", |k| k != "choices" && k != "usage");
        prop_oneof![
            scalar.clone(),
            prop::collection::vec(scalar.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key, scalar, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ".{0,12}".prop_map(|message| json!({"error": {"message": message}})),
        ]
        .prop_map(|value| value.to_string())
    }

    fn cuts() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(any::<usize>(), 0..16)
    }

    proptest! {
        #[test]
        fn any_split_of_a_completion_reads_as_its_text_and_counts(
            completion in completion(),
            framing in framing(),
            want_logprobs in any::<bool>(),
            cuts in cuts(),
        ) {
            let body = body(&payloads(&completion), &framing);
            prop_assert_eq!(read(split(&body, &cuts), want_logprobs), expected(&completion, want_logprobs));
        }

        #[test]
        fn a_garbage_payload_ends_the_stream_with_an_error(
            completion in completion(),
            framing in framing(),
            garbage in prop_oneof![not_json(), not_a_chunk()],
            at in any::<prop::sample::Index>(),
            cuts in cuts(),
        ) {
            let mut payloads = payloads(&completion);
            // Anywhere before `[DONE]`, after which nothing is read.
            let at = at.index(payloads.len() + 1 - usize::from(completion.done));
            payloads.insert(at, garbage);
            let deltas_before = at.saturating_sub(usize::from(completion.role_chunk));
            let texts_before =
                completion.deltas.iter().take(deltas_before).filter(|d| !d.text.is_empty()).count();
            let events = read(split(&body(&payloads, &framing), &cuts), false);
            prop_assert_eq!(events.len(), texts_before + 1, "{:?}", events);
            prop_assert_eq!(&events[..texts_before], &expected(&completion, false)[..texts_before]);
            prop_assert!(events[texts_before].is_err(), "{:?}", events);
        }

        #[test]
        fn a_damaged_stream_ends_once_without_panicking(
            completion in completion(),
            framing in framing(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
            cuts in cuts(),
        ) {
            let mut body = body(&payloads(&completion), &framing);
            for (at, byte, kind) in damage {
                let at = at.index(body.len() + 1);
                match kind {
                    0 => body.insert(at, byte),
                    1 if at < body.len() => body[at] = byte,
                    _ if at < body.len() => drop(body.remove(at)),
                    _ => body.push(byte),
                }
            }
            prop_assert!(ends_once(&read(split(&body, &cuts), true)));
        }

        #[test]
        fn arbitrary_bytes_end_once_without_panicking(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), prop::sample::select(b"data: {}[]\"\r\n".to_vec())],
                0..256,
            ),
            cuts in cuts(),
        ) {
            prop_assert!(ends_once(&read(split(&bytes, &cuts), false)));
        }
    }
}
