//! The prompts PICE sends to models: the one place that words the sketch and expansion requests.
//!
//! The simulator reads these prompts back ([`parse_expansion_target`]) to know which point it
//! is asked to expand, so wording changes here are picked up by the simulator as well.

use crate::generation::ExpansionRequest;
use crate::openai_wire::ChatMessage;

/// Starts the line of an expansion prompt that names the point to expand.
pub const EXPAND_MARKER: &str = "Expand only point ";

const EXPANSION_SYSTEM: &str = "You expand one point of an answer outline written by a larger \
model. Write 1 to 3 sentences that develop only the requested point with concrete facts. Do not \
number the text, do not introduce it, and do not repeat the other points.";

/// The messages asking a model to expand one point of a sketch: the client's context (if any),
/// the question and the whole outline first, the point to expand last.
pub fn expansion_messages(request: &ExpansionRequest) -> Vec<ChatMessage> {
    let mut user = String::new();
    if !request.context.trim().is_empty() {
        user.push_str(&format!("Context from the client:\n{}\n\n", request.context.trim()));
    }
    user.push_str(&format!("Question: {}\n\nOutline:\n", request.question.trim()));
    for (number, point) in (1..).zip(&request.sketch) {
        user.push_str(&format!("{number}. {}\n", point.trim()));
    }
    let point = request.sketch.get(request.point_index).map_or("", |p| p.trim());
    user.push_str(&format!("\n{EXPAND_MARKER}{}: {point}", request.point_index + 1));
    vec![ChatMessage::new("system", EXPANSION_SYSTEM), ChatMessage::new("user", user)]
}

/// What the client said besides its question: its own instructions (system or developer
/// messages) and the turns before the question, oldest first.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientContext<'a> {
    pub instructions: &'a str,
    pub earlier: &'a [ChatMessage],
}

impl ClientContext<'_> {
    /// The context as text for expansion prompts: the instructions, then the turns as
    /// `role: text` lines.
    pub fn as_text(&self) -> String {
        let mut text = String::new();
        if !self.instructions.trim().is_empty() {
            text.push_str(&format!("Instructions: {}\n", self.instructions.trim()));
        }
        for turn in self.earlier {
            text.push_str(&format!("{}: {}\n", turn.role, turn.text().trim()));
        }
        text
    }
}

/// The messages asking a model for a sketch: at most `max_points` numbered points of about
/// `words_per_point` words, each self-sufficient (docs/design.md, step 3). The client's
/// instructions join the system message and its earlier turns come before the question, so
/// the outline answers the question as the conversation means it.
pub fn sketch_messages(
    question: &str,
    context: ClientContext<'_>,
    max_points: u32,
    words_per_point: u32,
) -> Vec<ChatMessage> {
    let mut system = format!(
        "Write a short outline of the answer as a numbered list of at most {max_points} points, \
         about {words_per_point} words each. Each point must stand on its own: name the key \
         facts, numbers and entities. Write only the numbered list. If the answer cannot be \
         split into independent points (code, a calculation, a proof, a single fact, a story or \
         poem, a rewrite of a given text), write no list: answer the question directly and in \
         full instead."
    );
    if !context.instructions.trim().is_empty() {
        system.push_str(&format!(
            "\n\nThe answer must follow these instructions from the user's application: {}",
            context.instructions.trim()
        ));
    }
    let mut messages = vec![ChatMessage::new("system", system)];
    messages.extend(context.earlier.iter().map(|turn| ChatMessage::new(&turn.role, turn.text())));
    messages.push(ChatMessage::new("user", question.trim()));
    messages
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

    fn point(question: &str, point_index: usize) -> ExpansionRequest {
        let sketch = vec!["Solar panels turn light into power".into(), " Batteries store it ".into()];
        ExpansionRequest { question: question.into(), sketch, point_index, ..ExpansionRequest::default() }
    }

    #[test]
    fn expansion_prompt_lists_the_whole_sketch_and_names_one_point() {
        let messages = expansion_messages(&point("How does home solar work?", 1));
        let user = messages[1].text();
        assert!(user.starts_with("Question: How does home solar work?"), "no context, no preamble: {user}");
        assert!(user.contains("1. Solar panels turn light into power\n2. Batteries store it\n"));
        assert!(user.ends_with("Expand only point 2: Batteries store it"));
    }

    #[test]
    fn the_expansion_target_reads_back_from_the_prompt() {
        let messages = expansion_messages(&point("q", 0));
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
        let messages = sketch_messages(" Why is the sky blue? ", ClientContext::default(), 6, 10);
        assert!(messages[0].text().contains("numbered list of at most 6 points, about 10 words"));
        assert_eq!(messages[1].text(), "Why is the sky blue?");
    }

    #[test]
    fn the_clients_instructions_and_earlier_turns_shape_sketch_and_expansions() {
        let earlier = [ChatMessage::new("user", "I keep bees."), ChatMessage::new("assistant", "Nice.")];
        let context = ClientContext { instructions: "Answer in French.", earlier: &earlier };
        let messages = sketch_messages("What do they need in winter?", context, 4, 8);
        assert!(messages[0].text().ends_with("from the user's application: Answer in French."));
        let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(messages[3].text(), "What do they need in winter?");

        let request =
            ExpansionRequest { context: context.as_text(), ..point("What do they need in winter?", 0) };
        let user = expansion_messages(&request)[1].text().into_owned();
        assert!(
            user.starts_with("Context from the client:\nInstructions: Answer in French.\nuser: I keep bees.\nassistant: Nice.\n\nQuestion: "),
            "{user}"
        );
        assert_eq!(parse_expansion_target(&user).unwrap().number, 1);
    }
}
