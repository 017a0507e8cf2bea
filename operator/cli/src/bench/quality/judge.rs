//! The judge: an OpenAI-compatible model asked which of two answers to a question is better,
//! and its verdict read back leniently (a small model rarely answers in exactly one word).

use serde_json::{Value, json};

/// What the judge said about "Answer A" and "Answer B".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    A,
    B,
    Tie,
    /// Nothing readable as a verdict; counted as a tie, and reported.
    Unclear,
}

/// The judge's messages for one ordered pair.
pub fn messages(question: &str, first: &str, second: &str) -> Value {
    let system = "You compare two answers to the same question. Judge helpfulness, correctness, \
                  completeness and clarity; ignore length for its own sake and the order in which \
                  the answers are shown. Reply with one word: A if Answer A is better, B if Answer B \
                  is better, or tie.";
    let user = format!(
        "Question:\n{question}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\nWhich is better: A, B or tie?"
    );
    json!([{"role": "system", "content": system}, {"role": "user", "content": user}])
}

/// Reads the verdict from the judge's reply: the first of `A`, `B` or `tie` standing as a word.
pub fn verdict(reply: &str) -> Verdict {
    for word in reply.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        match word.to_lowercase().as_str() {
            "a" if word == "A" => return Verdict::A,
            "b" if word == "B" => return Verdict::B,
            "tie" | "equal" | "both" => return Verdict::Tie,
            _ => {}
        }
    }
    Verdict::Unclear
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_plain_and_chatty_replies() {
        assert_eq!(verdict("A"), Verdict::A);
        assert_eq!(verdict("**B**"), Verdict::B);
        assert_eq!(verdict("Answer B is better."), Verdict::B);
        assert_eq!(verdict("Tie."), Verdict::Tie);
        assert_eq!(verdict("I think both are fine"), Verdict::Tie);
        assert_eq!(verdict("a cat"), Verdict::Unclear, "a lower-case article is no verdict");
        assert_eq!(verdict(""), Verdict::Unclear);
    }

    #[test]
    fn the_prompt_shows_both_answers_in_the_order_given() {
        let messages = messages("Q?", "first answer", "second answer");
        let user = messages[1]["content"].as_str().unwrap_or_default();
        assert!(user.find("first answer") < user.find("second answer"));
        assert!(user.contains("Answer A:\nfirst answer"));
    }
}
