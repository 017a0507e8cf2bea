//! A point's text as the answer shows it. The gateway numbers the points itself, so a list
//! marker the model put at the start of its expansion ("2. ", "1) ") is left out, as is the
//! marker of a next item it began at the end and never wrote (a last line "3" or "3."), and the
//! whitespace around. Small models do both often. The filter holds back only text that may still
//! turn out to be such a marker, so the head point still streams, and any chunking of a text
//! shows the same as the whole.

/// Longest number a list marker has.
const MARKER_DIGITS: usize = 3;

/// The filter of one point's text; feed it every piece, then [`PointText::finish`].
#[derive(Debug, Default)]
pub struct PointText {
    /// Whether the start of the text has been decided (a marker dropped or none there).
    started: bool,
    /// Whether a leading marker was dropped (only whitespace may be dropped after it).
    marker_dropped: bool,
    /// Text not shown yet: the start while undecided, then a tail that may be a marker.
    held: String,
}

impl PointText {
    /// Takes the next piece; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        if !self.started {
            let text = self.held.trim_start();
            let text = match leading_marker(text) {
                _ if self.marker_dropped => text,
                Lead::Undecided => return String::new(),
                Lead::Marker(len) => {
                    self.marker_dropped = true;
                    text[len..].trim_start()
                }
                Lead::None => text,
            };
            self.held = text.to_owned();
            if self.held.is_empty() {
                // Nothing but a marker and whitespace so far.
                return String::new();
            }
            self.started = true;
        }
        let keep = trailing_marker_start(&self.held).unwrap_or(self.held.len());
        let tail = self.held.split_off(keep);
        std::mem::replace(&mut self.held, tail)
    }

    /// The end of the text: what is still to show (a held marker is dropped).
    pub fn finish(self) -> String {
        if !self.started {
            // A number alone is text; a number with a marker's point or bracket is a marker.
            let text = self.held.trim();
            let number = !self.marker_dropped && text.bytes().all(|b| b.is_ascii_digit());
            return if number { text.to_owned() } else { String::new() };
        }
        match trailing_marker_start(&self.held) {
            Some(start) => self.held[..start].to_owned(),
            None => self.held,
        }
    }
}

/// What the start of a text (leading whitespace removed) says about a list marker.
#[derive(Debug, PartialEq, Eq)]
enum Lead {
    /// Too little text to tell.
    Undecided,
    /// A marker of this many bytes, followed by whitespace.
    Marker(usize),
    /// No marker.
    None,
}

fn leading_marker(text: &str) -> Lead {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return if text.is_empty() { Lead::Undecided } else { Lead::None };
    }
    if digits > MARKER_DIGITS {
        return Lead::None;
    }
    let rest = &text.as_bytes()[digits..];
    match rest {
        [] => Lead::Undecided,
        [b'.' | b')'] => Lead::Undecided,
        [b'.' | b')', next, ..] if next.is_ascii_whitespace() => Lead::Marker(digits + 1),
        _ => Lead::None,
    }
}

/// Where the text's held-back end begins: from the first line break of the whitespace before
/// a last word that is a marker (or of the trailing whitespace, when the last word is not one).
/// `None` when the text does not end with a line break or a marker on a line of its own.
fn trailing_marker_start(text: &str) -> Option<usize> {
    let end = text.trim_end().len();
    let word_start = text[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let run_start = if is_marker(&text[word_start..end]) { text[..word_start].trim_end().len() } else { end };
    text[run_start..].find('\n').map(|i| run_start + i)
}

/// Nothing, or a list marker without its space: "3", "3." or "3)".
fn is_marker(word: &str) -> bool {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &word[digits..];
    word.is_empty() || ((1..=MARKER_DIGITS).contains(&digits) && matches!(rest, "" | "." | ")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn shown(pieces: &[&str]) -> String {
        let mut filter = PointText::default();
        let mut out: String = pieces.iter().map(|piece| filter.push(piece)).collect();
        out.push_str(&filter.finish());
        out
    }

    #[test]
    fn a_marker_the_model_repeated_at_the_start_is_left_out() {
        assert_eq!(shown(&["2. Avoid heavy meals"]), "Avoid heavy meals");
        assert_eq!(shown(&[" ", "1", ")", " ", " Sleep well"]), "Sleep well");
        assert_eq!(shown(&["\n3.\n", "Keep a schedule."]), "Keep a schedule.");
    }

    #[test]
    fn numbers_that_are_text_stay() {
        assert_eq!(shown(&["2.5 million people"]), "2.5 million people");
        assert_eq!(shown(&["3 eggs are enough"]), "3 eggs are enough");
        assert_eq!(shown(&["2024. A year"]), "2024. A year");
        assert_eq!(shown(&["Rates rose in\n", "2020 by 5 %"]), "Rates rose in\n2020 by 5 %");
        assert_eq!(shown(&["Step one.\n\n", "Step two."]), "Step one.\n\nStep two.");
    }

    #[test]
    fn a_next_item_begun_at_the_end_is_left_out() {
        assert_eq!(shown(&["Exercise helps the heart.\n2"]), "Exercise helps the heart.");
        assert_eq!(shown(&["Exercise helps.", "\n\n", "3."]), "Exercise helps.");
        assert_eq!(shown(&["It ends in 2020."]), "It ends in 2020.");
        // Found by the chunking property: a last word that is no marker keeps only the line
        // break after it held back, whether or not the break came in its own piece.
        assert_eq!(shown(&[".00.\n.0.00\n"]), ".00.\n.0.00");
        assert_eq!(shown(&[".00.\n.0", ".00\n"]), ".00.\n.0.00");
    }

    #[test]
    fn the_head_point_streams_as_it_comes() {
        let mut filter = PointText::default();
        assert_eq!(filter.push("1."), "");
        assert_eq!(filter.push(" Drink"), "Drink");
        assert_eq!(filter.push(" water"), " water");
        assert_eq!(filter.push("\n"), "");
        assert_eq!(filter.push("daily"), "\ndaily");
        assert_eq!(filter.finish(), "");
    }

    #[test]
    fn a_text_that_is_only_a_marker_shows_nothing_and_a_number_alone_stays() {
        assert_eq!(shown(&["4."]), "");
        assert_eq!(shown(&[" \n"]), "");
        assert_eq!(shown(&[]), "");
        assert_eq!(shown(&["1", "1"]), "11");
        assert_eq!(shown(&["3. ", "4. x"]), "4. x", "one marker is dropped, not two");
    }
}

#[cfg(test)]
mod properties {
    use super::tests::shown;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_chunking_shows_what_the_whole_text_shows(
            text in "[0-9. )\\nab]{0,24}",
            cuts in proptest::collection::vec(0usize..24, 0..6),
        ) {
            let chars: Vec<char> = text.chars().collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(chars.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([chars.len()]) {
                pieces.push(chars[from..cut].iter().collect::<String>());
                from = cut;
            }
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            prop_assert_eq!(shown(&refs), shown(&[&text]));
        }
    }
}
