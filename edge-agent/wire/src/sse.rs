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
