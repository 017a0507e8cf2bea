//! Stop sequences over streamed text: the text a generation may show so far, held back only
//! where it could be the start of a stop sequence, and cut before the first one that appears.

/// Scans a generation's text for the client's stop sequences as it is written.
#[derive(Clone, Debug, Default)]
pub struct StopScanner {
    stops: Vec<String>,
    /// Text not shown yet: it ends with what may become a stop sequence.
    held: String,
}

/// What a piece of text gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Text that can be shown now (may be empty).
    Text(String),
    /// A stop sequence appeared: show this text, then end the generation.
    Stopped(String),
}

impl StopScanner {
    /// A scanner for `stops`; empty sequences are ignored.
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Reads the next piece of generated text.
    pub fn push(&mut self, piece: &str) -> Scanned {
        if self.stops.is_empty() {
            return Scanned::Text(piece.to_owned());
        }
        self.held.push_str(piece);
        let first = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min();
        if let Some(at) = first {
            self.held.truncate(at);
            return Scanned::Stopped(std::mem::take(&mut self.held));
        }
        let keep = self.longest_pending_suffix();
        let shown = self.held[..self.held.len() - keep].to_owned();
        self.held.drain(..self.held.len() - keep);
        Scanned::Text(shown)
    }

    /// Ends the generation: the text still held is shown.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Bytes at the end of the held text that begin some stop sequence.
    fn longest_pending_suffix(&self) -> usize {
        let held = self.held.as_str();
        (1..=held.len().min(self.longest_stop().saturating_sub(1)))
            .rev()
            .filter(|&length| held.is_char_boundary(held.len() - length))
            .find(|&length| self.stops.iter().any(|stop| stop.starts_with(&held[held.len() - length..])))
            .unwrap_or(0)
    }

    fn longest_stop(&self) -> usize {
        self.stops.iter().map(String::len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| (*s).to_owned()).collect();
        let mut scanner = StopScanner::new(&stops);
        let mut shown = String::new();
        for piece in pieces {
            match scanner.push(piece) {
                Scanned::Text(text) => shown.push_str(&text),
                Scanned::Stopped(text) => {
                    shown.push_str(&text);
                    return (shown, true);
                }
            }
        }
        shown.push_str(&scanner.finish());
        (shown, false)
    }

    #[test]
    fn text_stops_before_a_sequence_split_across_pieces() {
        assert_eq!(scan(&["END"], &["one two E", "N", "D three"]), ("one two ".to_owned(), true));
        assert_eq!(scan(&["\n\n", "###"], &["a\n", "\nb"]), ("a".to_owned(), true));
    }

    #[test]
    fn a_false_start_is_shown_once_it_cannot_be_a_stop() {
        assert_eq!(scan(&["END"], &["EN", "d of it"]), ("ENd of it".to_owned(), false));
        assert_eq!(
            scan(&["END"], &["the EN"]),
            ("the EN".to_owned(), false),
            "held text is shown at the end"
        );
    }

    #[test]
    fn only_a_possible_start_is_held_back() {
        let mut scanner = StopScanner::new(&["END".to_owned()]);
        assert_eq!(scanner.push("café E"), Scanned::Text("café ".to_owned()));
        assert_eq!(scanner.push("x"), Scanned::Text("Ex".to_owned()));
    }

    #[test]
    fn without_stops_everything_passes() {
        assert_eq!(scan(&[], &["a", "b"]), ("ab".to_owned(), false));
        assert_eq!(scan(&[""], &["a", "b"]), ("ab".to_owned(), false));
    }

    #[test]
    fn multibyte_stops_and_text_keep_char_boundaries() {
        assert_eq!(scan(&["é!"], &["caf", "é", "! x"]), ("caf".to_owned(), true));
        assert_eq!(scan(&["ab"], &["ééa", "é"]), ("ééaé".to_owned(), false));
    }
}
