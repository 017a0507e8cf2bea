//! Reads a chat prompt to decide what the simulator should write: a sketch, an expansion of one
//! point, or plain prose.
//!
//! Recognition rules (documented because other gateways' prompts may rely on them):
//! - an expansion: the last user message has a line made by [`prompt::expansion_messages`]
//!   (`Expand only point N: <point>`);
//! - a sketch: some message mentions a "numbered" list, points or outline; the number of points
//!   is the number after "at most", "up to", "exactly" or before "points" (default 5, at most
//!   20), the words per point the number before "words" (default 8);
//! - prose instead of a sketch when the prompt allows answering directly ("answer the question
//!   directly") and the question asks for code, a calculation, a proof, a story or a poem: a
//!   fixed word list ([`SEQUENTIAL`]) stands in for a real model's judgement, so tests and
//!   benchmarks can exercise a cloud that declines to sketch;
//! - anything else is prose.

use pice_wire::openai_wire::ChatMessage;
use pice_wire::prompt;

const DEFAULT_POINTS: u32 = 5;
const MAX_POINTS: u32 = 20;
const DEFAULT_WORDS_PER_POINT: u32 = 8;

/// Words in a question for which the simulated cloud answers directly when allowed to.
pub const SEQUENTIAL: &[&str] = &[
    "code",
    "program",
    "function",
    "script",
    "calculate",
    "solve",
    "equation",
    "prove",
    "proof",
    "story",
    "poem",
];

/// What a prompt asks the simulator for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Sketch { topic: String, points: u32, words_per_point: u32 },
    Expand { number: u32, point: String },
    Prose { topic: String },
}

impl Ask {
    /// Decides what `messages` ask for.
    pub fn read(messages: &[ChatMessage]) -> Self {
        let topic = messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.text().into_owned())
            .unwrap_or_default();
        if let Some(target) = prompt::parse_expansion_target(&topic) {
            return Self::Expand { number: target.number, point: target.point };
        }
        let all = messages.iter().map(|m| m.text().to_lowercase()).collect::<Vec<_>>().join("\n");
        if asks_for_numbered_points(&all) && !declines(&all, &topic) {
            return Self::Sketch {
                topic,
                points: point_count(&all).clamp(1, MAX_POINTS),
                words_per_point: number_before(&all, "words").unwrap_or(DEFAULT_WORDS_PER_POINT).max(1),
            };
        }
        Self::Prose { topic }
    }
}

/// Whether the simulated cloud answers `topic` directly rather than sketching it.
fn declines(prompt: &str, topic: &str) -> bool {
    let topic = topic.to_lowercase();
    let words: Vec<&str> = topic.split(|c: char| !c.is_alphanumeric()).collect();
    prompt.contains("answer the question directly") && SEQUENTIAL.iter().any(|word| words.contains(word))
}

fn asks_for_numbered_points(text: &str) -> bool {
    text.contains("numbered") && ["point", "list", "outline"].iter().any(|w| text.contains(w))
}

fn point_count(text: &str) -> u32 {
    ["at most ", "up to ", "exactly "]
        .iter()
        .find_map(|lead| number_after(text, lead))
        .or_else(|| number_before(text, "points"))
        .unwrap_or(DEFAULT_POINTS)
}

/// The number written right after `lead`, e.g. `at most 6`.
fn number_after(text: &str, lead: &str) -> Option<u32> {
    text.match_indices(lead).find_map(|(at, _)| {
        let rest = &text[at + lead.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// The number written right before `word`, e.g. `12 words`.
fn number_before(text: &str, word: &str) -> Option<u32> {
    text.match_indices(word).find_map(|(at, _)| {
        let head = text[..at].trim_end();
        let digits: String = head.chars().rev().take_while(char::is_ascii_digit).collect();
        digits.chars().rev().collect::<String>().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Vec<ChatMessage> {
        vec![ChatMessage::new("user", text)]
    }

    #[test]
    fn pice_sketch_prompts_are_read_with_their_budget() {
        let ask = Ask::read(&prompt::sketch_messages(
            "Why is the sea salty?",
            prompt::ClientContext::default(),
            6,
            12,
        ));
        let expected = Ask::Sketch { topic: "Why is the sea salty?".into(), points: 6, words_per_point: 12 };
        assert_eq!(ask, expected);
    }

    #[test]
    fn a_sketch_prompt_that_allows_it_gets_prose_for_code_and_maths() {
        let ask =
            |question| Ask::read(&prompt::sketch_messages(question, prompt::ClientContext::default(), 6, 12));
        assert_eq!(
            ask("Write a Python function that reverses a list."),
            Ask::Prose { topic: "Write a Python function that reverses a list.".into() }
        );
        assert!(matches!(ask("How can I write better documentation?"), Ask::Sketch { .. }));
        let plain = Ask::read(&user("Give a numbered list of 3 points: write a poem"));
        assert!(matches!(plain, Ask::Sketch { .. }), "a prompt that does not allow it gets a sketch");
    }

    #[test]
    fn other_sketch_wordings_are_understood() {
        let ask = Ask::read(&user("Answer as a numbered list of 4 points."));
        assert!(matches!(ask, Ask::Sketch { points: 4, words_per_point: 8, .. }));
        let ask = Ask::read(&user("Give a numbered outline, up to 30 items"));
        assert!(matches!(ask, Ask::Sketch { points: 20, .. }));
        let ask = Ask::read(&user("Give a numbered list"));
        assert!(matches!(ask, Ask::Sketch { points: 5, .. }));
    }

    #[test]
    fn pice_expansion_prompts_name_the_point() {
        let sketch = vec!["Rivers carry minerals".to_owned(), "Evaporation concentrates salt".to_owned()];
        let ask = Ask::read(&prompt::expansion_messages(&pice_wire::generation::ExpansionRequest {
            question: "Why is the sea salty?".into(),
            sketch,
            point_index: 1,
            ..Default::default()
        }));
        assert_eq!(ask, Ask::Expand { number: 2, point: "Evaporation concentrates salt".into() });
    }

    #[test]
    fn anything_else_is_prose_about_the_last_user_message() {
        let messages =
            vec![ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Tell me about tides.")];
        assert_eq!(Ask::read(&messages), Ask::Prose { topic: "Tell me about tides.".into() });
    }
}
