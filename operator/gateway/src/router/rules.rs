//! The hand-written suitability rules the learned router replaced, kept as the baseline
//! `pice-gateway router eval` compares it with.
//!
//! A weighted sum of cheap rules over the lower-cased question. Rules for list-shaped answers
//! (ways, factors, differences, "what if") add; rules for answers that must be written in one
//! sequence (code, maths, counting, multiple choice, letters and stories, role play) subtract.
//! A question is suitable when the score reaches [`THRESHOLD`]. The rules were written while
//! reading vicuna80 and wizardlm, and on questions they were not written against they do no
//! better than answering "unsuitable" every time.

use std::sync::LazyLock;

use regex::Regex;

/// Score at which a question counts as suitable.
pub const THRESHOLD: i32 = 1;

/// A named pattern and its weight.
struct Rule {
    pattern: Regex,
    weight: i32,
}

/// (weight, pattern): positive for list-shaped answers, negative for sequential ones.
const RULES: &[(i32, &str)] = &[
    // List-shaped answers.
    (
        3,
        r"\bwhat are (the|some)?\b.{0,40}\b(ways|strategies|tips|factors|challenges|differences|benefits|advantages|disadvantages|implications|applications|causes|effects|examples|ideas|features|principles|issues|reasons|steps|key points|clues|types)\b",
    ),
    (
        1,
        r"\b(ways|strategies|tips|factors|challenges|differences|advantages|disadvantages|pros and cons|implications|applications|ideas|examples)\b",
    ),
    (2, r"^how (can|do|should) (i|you|we|one|governments|people)\b"),
    (3, r"^what if\b|\bhow would .* (be different|affect|change)\b|\bwhat would happen\b"),
    (1, r"\b(compare|contrast|differences? between)\b"),
    (1, r"\b(list|outline|suggest|recommend)\b"),
    (2, r"\bwhy (might|do|would) (some|someone|people)\b"),
    (2, r"\b(explain the basics|what factors)\b"),
    (1, r"\bethic(al|s)\b"),
    // Code.
    (
        -3,
        r"\b(write|implement|develop|create) (a |an )?(c\+\+ |python |java |matlab |simple )?(program|function|method|script in|class|algorithm|regular expression|code)",
    ),
    (
        -1,
        r"\b(implement|code|coding|program|function|python|java|javascript|c\+\+|c#|ruby|sql|html|matlab|lua|array|string|linked list|integer)\b",
    ),
    (-3, r"```|#include|\bdef |\breturn\b|\\n|=>|;\s*\}"),
    (-3, r"\bgiven (an?|two) (array|string|integer|graph|linked)"),
    // Maths and counting.
    (-2, r"\d\s*[-+*/^=]\s*\d|\b[a-z]\s*[=+*/^]\s*\d|f\(x\)|dy/dx"),
    (
        -2,
        r"\b(solve|calculate|compute|evaluate|find the (value|area|length|limit|equation|antiderivative|absolute)|integral|derivative|equation)\b",
    ),
    (-2, r"\bhow (many|much)\b"),
    (-2, r"step-by-step|step by step"),
    // Quizzes and short facts.
    (-3, r"\b[a-d]\)\s|\([a-d]\)\s"),
    (
        -3,
        r"\bwhich (of the following|novel|artist|composer|movie|art movement)\b|\bwhat is the name\b|\bwho (played|wrote|is|was)\b",
    ),
    // Letters, stories and role play: one voice, written in sequence.
    (
        -3,
        r"\b(write|compose|draft|structure)\b.{0,40}\b(story|poem|haiku|letter|email|essay|script|review|blog post|card|speech|soliloquy|piece|report|plan|cover letter|announcement|song)\b",
    ),
    (-2, r"^(as an? |pretend|imagine you are|you are an? |if you were)"),
    (-2, r"\bhow would you (introduce|describe|declare|explain)\b"),
    (-1, r"\b(describe|explain) (your|the winning)\b"),
    // Yes-or-no debates.
    (-1, r"^(do|does|is|are|can|should|would|will|did) \w+.*\bor\b"),
    (-1, r"^(is it|do we|should)\b"),
];

static COMPILED: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    RULES
        .iter()
        .filter_map(|&(weight, pattern)| Regex::new(pattern).ok().map(|pattern| Rule { pattern, weight }))
        .collect()
});

/// The classifier's verdict on one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suitability {
    /// Sum of the weights of the rules that matched.
    pub score: i32,
}

impl Suitability {
    /// Whether the question should go through sketch-and-expand.
    pub fn suitable(self) -> bool {
        self.score >= THRESHOLD
    }
}

/// Scores `question`.
pub fn classify(question: &str) -> Suitability {
    let text = question.trim().to_lowercase();
    let score = COMPILED.iter().filter(|rule| rule.pattern.is_match(&text)).map(|rule| rule.weight).sum();
    Suitability { score }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert_eq!(COMPILED.len(), RULES.len());
    }

    #[test]
    fn list_shaped_questions_are_suitable() {
        for question in [
            "What are the most effective ways to deal with stress?",
            "How can I improve my time management skills?",
            "What if the Internet had been invented during the Renaissance period?",
            "What are the advantages and disadvantages of free trade?",
        ] {
            assert!(classify(question).suitable(), "{question}: {:?}", classify(question));
        }
    }

    #[test]
    fn code_maths_quizzes_and_letters_are_not() {
        for question in [
            "Implement a binary search algorithm to find a specific element in a sorted array.",
            "Solve for x in the equation 3x + 10 = 5(x - 2).",
            "How many atoms are in a grain of salt? Explain step-by-step.",
            "Which composer wrote Messiah? A) Bach B) Handel",
            "Write a resignation letter to my current employer.",
            "Pretend to be a world-famous chef. Describe your signature dish.",
        ] {
            assert!(!classify(question).suitable(), "{question}: {:?}", classify(question));
        }
    }
}
