//! The prompts PICE sends to models: the one place that words the sketch and expansion requests.
//!
//! The simulator reads these prompts back ([`parse_expansion_target`]) to know which point it
//! is asked to expand, so wording changes here are picked up by the simulator as well.

use crate::openai_wire::ChatMessage;

/// Starts the line of an expansion prompt that names the point to expand.
pub const EXPAND_MARKER: &str = "Expand only point ";

const EXPANSION_SYSTEM: &str = "You expand one point of an answer outline written by a larger \
model. Write 1 to 3 sentences that develop only the requested point with concrete facts. Do not \
number the text, do not introduce it, and do not repeat the other points.";

/// The messages asking a model to expand point `point_index` (0-based) of `sketch`.
///
/// The caller checks that `point_index` is within the sketch.
pub fn expansion_messages(question: &str, sketch: &[String], point_index: usize) -> Vec<ChatMessage> {
    let mut user = format!("Question: {}\n\nOutline:\n", question.trim());
    for (number, point) in (1..).zip(sketch) {
        user.push_str(&format!("{number}. {}\n", point.trim()));
    }
    let point = sketch.get(point_index).map_or("", |p| p.trim());
    user.push_str(&format!("\n{EXPAND_MARKER}{}: {point}", point_index + 1));
    vec![ChatMessage::new("system", EXPANSION_SYSTEM), ChatMessage::new("user", user)]
}

/// The messages asking a model for a sketch: at most `max_points` numbered points of about
/// `words_per_point` words, each self-sufficient (docs/design.md, step 3).
pub fn sketch_messages(question: &str, max_points: u32, words_per_point: u32) -> Vec<ChatMessage> {
    let system = format!(
        "Write a short outline of the answer as a numbered list of at most {max_points} points, \
         about {words_per_point} words each. Each point must stand on its own: name the key \
         facts, numbers and entities. Write only the numbered list."
    );
    vec![ChatMessage::new("system", system), ChatMessage::new("user", question.trim())]
}

/// The point an expansion prompt asks for: its 1-based number and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpansionTarget {
    pub number: u32,
    pub point: String,
}

/// Reads the point to expand back from a prompt made by [`expansion_messages`].
pub fn parse_expansion_target(text: &str) -> Option<ExpansionTarget> {
    let line = text.lines().rev().find(|l| l.starts_with(EXPAND_MARKER))?;
    let rest = &line[EXPAND_MARKER.len()..];
    let (number, point) = rest.split_once(':')?;
    Some(ExpansionTarget { number: number.trim().parse().ok()?, point: point.trim().to_owned() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sketch() -> Vec<String> {
        vec!["Solar panels turn light into power".into(), " Batteries store it ".into()]
    }

    #[test]
    fn expansion_prompt_lists_the_whole_sketch_and_names_one_point() {
        let messages = expansion_messages("How does home solar work?", &sketch(), 1);
        let user = messages[1].text();
        assert!(user.contains("Question: How does home solar work?"));
        assert!(user.contains("1. Solar panels turn light into power\n2. Batteries store it\n"));
        assert!(user.ends_with("Expand only point 2: Batteries store it"));
    }

    #[test]
    fn the_expansion_target_reads_back_from_the_prompt() {
        let messages = expansion_messages("q", &sketch(), 0);
        let target = parse_expansion_target(&messages[1].text()).unwrap();
        assert_eq!(target.number, 1);
        assert_eq!(target.point, "Solar panels turn light into power");
    }

    #[test]
    fn text_without_the_marker_has_no_target() {
        assert_eq!(parse_expansion_target("Tell me about solar power."), None);
        assert_eq!(parse_expansion_target("Expand only point x: y"), None);
    }

    #[test]
    fn sketch_prompt_states_the_point_budget() {
        let messages = sketch_messages(" Why is the sky blue? ", 6, 10);
        assert!(messages[0].text().contains("numbered list of at most 6 points, about 10 words"));
        assert_eq!(messages[1].text(), "Why is the sky blue?");
    }
}
