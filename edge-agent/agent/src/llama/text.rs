//! Token bytes to text pieces: a token may end in the middle of a UTF-8 character (emoji, CJK),
//! so bytes are held back until the character is complete.

/// Turns the byte pieces of consecutive tokens into valid UTF-8 text.
#[derive(Debug, Default)]
pub struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    /// Adds a token's bytes; returns the text that is complete now (possibly empty). Bytes that
    /// can never be valid UTF-8 become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    text.push_str(valid);
                    self.pending.clear();
                    return text;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    text.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match error.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return text;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + invalid);
                        }
                    }
                }
            }
        }
    }

    /// The held-back bytes of a character that never completed, as U+FFFD; empty if none.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_pieces_pass_through_at_once() {
        let mut pieces = Utf8Pieces::default();
        assert_eq!(pieces.push(b"Bees"), "Bees");
        assert_eq!(pieces.push(b" make"), " make");
        assert_eq!(pieces.finish(), "");
    }

    #[test]
    fn a_character_split_across_tokens_comes_out_whole() {
        let bee = "🐝".as_bytes();
        let mut pieces = Utf8Pieces::default();
        assert_eq!(pieces.push(&[b' ', bee[0], bee[1]]), " ");
        assert_eq!(pieces.push(&bee[2..]), "🐝");
        assert_eq!(pieces.push("é!".as_bytes()), "é!");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_and_the_rest_survives() {
        let mut pieces = Utf8Pieces::default();
        assert_eq!(pieces.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(pieces.push(&"é".as_bytes()[..1]), "");
        assert_eq!(pieces.finish(), "\u{fffd}");
    }
}
