//! A server-sent-events decoder: turns arbitrary byte chunks into complete `data:` payloads.

/// Incremental SSE decoder (the subset OpenAI-compatible servers use: `data:` fields,
/// comments, and blank lines ending events; LF or CRLF line ends).
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the data of every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        // One pass over the complete lines, then one drain: draining line by line would move the
        // rest of the buffer once per line (quadratic in the events a read brings).
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.pending[start..start + offset]);
            if let Some(event) = take_line(&mut self.data, line.trim_end_matches('\r')) {
                events.push(event);
            }
            start += offset + 1;
        }
        self.pending.drain(..start);
        events
    }

    /// Ends the input: an event left without its closing blank line is still delivered.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = String::from_utf8_lossy(&rest);
        let rest = rest.trim_end_matches(['\n', '\r']);
        if !rest.is_empty() {
            take_line(&mut self.data, rest);
        }
        self.data.take()
    }
}

/// Reads one line (without its line end) into the event being built in `data`; a blank line
/// ends the event and returns its data.
fn take_line(data: &mut Option<String>, line: &str) -> Option<String> {
    if line.is_empty() {
        return data.take();
    }
    let (field, value) = line.split_once(':').unwrap_or((line, ""));
    if field == "data" {
        let value = value.strip_prefix(' ').unwrap_or(value);
        match data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => *data = Some(value.to_owned()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: {\"a\"").is_empty());
        assert!(decoder.push(b":1}\n").is_empty());
        assert_eq!(decoder.push(b"\ndata: [DONE]\n\n"), vec!["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn crlf_comments_and_other_fields_are_handled() {
        let mut decoder = SseDecoder::default();
        let events = decoder.push(b": keep-alive\r\nevent: message\r\ndata:x\r\n\r\n");
        assert_eq!(events, vec!["x"]);
    }

    #[test]
    fn multi_line_data_joins_with_newlines() {
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(b"data: a\ndata: b\n\n"), vec!["a\nb"]);
    }

    #[test]
    fn a_multibyte_character_split_between_chunks_survives() {
        let mut decoder = SseDecoder::default();
        let text = "data: café\n\n".as_bytes();
        let (head, tail) = text.split_at(10);
        assert!(decoder.push(head).is_empty());
        assert_eq!(decoder.push(tail), vec!["café"]);
    }

    #[test]
    fn an_unterminated_last_event_is_delivered_at_the_end() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: last").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("last"));
        assert_eq!(decoder.finish(), None);
    }
}

#[cfg(test)]
mod properties {
    //! Property tests: any event stream, cut anywhere and with either line end, decodes to the
    //! events it was written from; arbitrary bytes never panic and buffer no complete line.
    //! `PROPTEST_CASES` sets the number of cases (256 by default, more in `make fuzz`).
    use proptest::prelude::*;

    use super::*;

    /// One line of an event as a server writes it.
    #[derive(Clone, Debug)]
    enum Line {
        /// A `data` field with its value, written `data:value`, `data: value` or bare `data`.
        Data(String),
        /// A line that is not a `data` field: a comment, `event`, `id`, `retry`, a field named
        /// like `data` but longer.
        Other(String),
    }

    /// An event stream as bytes, and the data of the events it holds.
    #[derive(Clone, Debug)]
    struct Stream {
        bytes: Vec<u8>,
        events: Vec<String>,
    }

    fn line() -> impl Strategy<Value = Line> {
        let value = "[^\r\n]{0,24}";
        let field = prop::sample::select(vec![":", ": ", "event: ", "id:", "retry: ", "datum: ", "data2:"]);
        prop_oneof![
            3 => value.prop_map(Line::Data),
            1 => (field, value).prop_map(|(field, value)| Line::Other(format!("{field}{value}"))),
        ]
    }

    /// How the last event ends: with its blank line, without it, or without even its line end.
    #[derive(Clone, Copy, Debug)]
    enum Tail {
        BlankLine,
        NoBlankLine,
        NoLineEnd,
    }

    /// Writes `events` (each a list of lines) with a line end per line (`\r\n` where `crlf`
    /// says so, `\n` otherwise), and the data of the events a reader must see.
    fn write(events: &[Vec<Line>], tail: Tail, crlf: &[bool]) -> Stream {
        let mut lines: Vec<String> = Vec::new();
        let mut expected = Vec::new();
        for event in events {
            let mut data: Option<String> = None;
            for line in event {
                match line {
                    Line::Data(value) => {
                        lines.push(data_line(value, lines.len()));
                        data = Some(match data {
                            Some(data) => format!("{data}\n{value}"),
                            None => value.clone(),
                        });
                    }
                    Line::Other(text) => lines.push(text.clone()),
                }
            }
            lines.push(String::new());
            expected.extend(data);
        }
        if !matches!(tail, Tail::BlankLine) {
            lines.pop();
        }
        let mut bytes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            bytes.extend_from_slice(line.as_bytes());
            let last = i + 1 == lines.len();
            if !(last && matches!(tail, Tail::NoLineEnd)) {
                bytes.extend_from_slice(if crlf[i % crlf.len()] { b"\r\n" } else { b"\n" });
            }
        }
        Stream { bytes, events: expected }
    }

    /// A `data` line for `value`; which of the three spellings varies with `seed`.
    fn data_line(value: &str, seed: usize) -> String {
        match seed % 3 {
            0 if value.is_empty() => "data".to_owned(),
            1 if !value.starts_with(' ') => format!("data:{value}"),
            _ => format!("data: {value}"),
        }
    }

    fn events() -> impl Strategy<Value = Vec<Vec<Line>>> {
        prop::collection::vec(prop::collection::vec(line(), 0..5), 0..8)
    }

    fn tail() -> impl Strategy<Value = Tail> {
        prop_oneof![Just(Tail::BlankLine), Just(Tail::NoBlankLine), Just(Tail::NoLineEnd)]
    }

    /// `bytes` cut at `cuts` (positions taken modulo its length).
    fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            chunks.push(bytes[start..cut].to_vec());
            start = cut;
        }
        chunks
    }

    /// Every event the decoder reads from `chunks`, the unterminated last one included.
    fn decode(chunks: &[Vec<u8>]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut events: Vec<String> = chunks.iter().flat_map(|chunk| decoder.push(chunk)).collect();
        events.extend(decoder.finish());
        events
    }

    fn cuts() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(any::<usize>(), 0..16)
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_decodes_to_its_events(
            events in events(),
            tail in tail(),
            crlf in prop::collection::vec(any::<bool>(), 1..4),
            cuts in cuts(),
        ) {
            let stream = write(&events, tail, &crlf);
            prop_assert_eq!(decode(std::slice::from_ref(&stream.bytes)), stream.events.clone());
            prop_assert_eq!(decode(&split(&stream.bytes, &cuts)), stream.events);
        }

        #[test]
        fn crlf_and_lf_line_ends_decode_alike(
            events in events(),
            tail in tail(),
            crlf in prop::collection::vec(any::<bool>(), 1..4),
        ) {
            let lf = write(&events, tail, &[false]);
            let mixed = write(&events, tail, &crlf);
            let all_crlf = write(&events, tail, &[true]);
            prop_assert_eq!(decode(&[mixed.bytes]), decode(std::slice::from_ref(&lf.bytes)));
            prop_assert_eq!(decode(&[all_crlf.bytes]), decode(&[lf.bytes]));
        }

        #[test]
        fn arbitrary_bytes_split_anywhere_decode_alike(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), prop::sample::select(b"data: \r\n".to_vec())],
                0..256,
            ),
            cuts in cuts(),
        ) {
            prop_assert_eq!(decode(&split(&bytes, &cuts)), decode(&[bytes]));
        }

        #[test]
        fn only_the_unterminated_last_line_stays_buffered(
            chunks in prop::collection::vec(
                prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..64),
                0..16,
            ),
        ) {
            let mut decoder = SseDecoder::default();
            let mut fed = Vec::new();
            for chunk in &chunks {
                decoder.push(chunk);
                fed.extend_from_slice(chunk);
                let partial = fed.iter().rposition(|&b| b == b'\n').map_or(&fed[..], |end| &fed[end + 1..]);
                prop_assert_eq!(&decoder.pending, partial);
            }
            decoder.finish();
            prop_assert!(decoder.pending.is_empty());
            prop_assert_eq!(decoder.data.as_ref(), None);
        }
    }
}
