//! The features the router reads from a question: what a linear model can weigh.
//!
//! - `w:` each word (lower case, letters and digits), `b:` each pair of neighbouring words;
//! - `o:` the opening one and two words ("how can", "write a"), which carry much of a
//!   question's shape;
//! - `c:` character 4-grams of each word padded with spaces, so unseen inflections and
//!   compounds still share features with the training set;
//! - `s:` structure: length bucket, several lines, code-like or formula-like characters,
//!   digits, a question mark, a list already in the question.
//!
//! Every feature is present or absent; the vector is scaled to unit length, so long questions
//! do not outweigh short ones.

/// Characters of a question the router reads; the rest cannot change a routing decision enough
/// to be worth the time.
const MAX_CHARS: usize = 4_000;

/// The distinct features of `question`, sorted, each with its weight in the unit vector.
pub fn extract(question: &str) -> Vec<(String, f32)> {
    let text: String = question.chars().take(MAX_CHARS).collect::<String>().to_lowercase();
    let words: Vec<&str> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).collect();
    let mut features: Vec<String> = Vec::with_capacity(words.len() * 8 + 8);
    for word in &words {
        features.push(format!("w:{word}"));
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        features.extend(padded.windows(4).map(|gram| format!("c:{}", gram.iter().collect::<String>())));
    }
    features.extend(words.windows(2).map(|pair| format!("b:{}_{}", pair[0], pair[1])));
    if let Some(first) = words.first() {
        features.push(format!("o:{first}"));
    }
    if words.len() >= 2 {
        features.push(format!("o:{}_{}", words[0], words[1]));
    }
    features.extend(structure(&text, words.len()).into_iter().map(str::to_owned));
    features.sort_unstable();
    features.dedup();
    let scale = if features.is_empty() { 0.0 } else { 1.0 / (features.len() as f32).sqrt() };
    features.into_iter().map(|feature| (feature, scale)).collect()
}

/// The structural features of lower-cased `text` of `words` words.
fn structure(text: &str, words: usize) -> Vec<&'static str> {
    let mut features = vec![match words {
        0..=5 => "s:words<=5",
        6..=12 => "s:words<=12",
        13..=25 => "s:words<=25",
        26..=60 => "s:words<=60",
        _ => "s:words>60",
    }];
    let lines = text.lines().filter(|line| !line.trim().is_empty()).count();
    if lines > 1 {
        features.push("s:lines>1");
    }
    if text.contains("```") || text.contains('{') || text.contains(';') || text.contains("()") {
        features.push("s:code");
    }
    if text.chars().any(|c| c.is_ascii_digit()) {
        features.push("s:digit");
    }
    let bytes = text.as_bytes();
    let formula = bytes.windows(3).any(|w| {
        w[0].is_ascii_alphanumeric()
            && matches!(w[1], b'+' | b'*' | b'/' | b'^' | b'=')
            && w[2].is_ascii_alphanumeric()
    });
    if formula {
        features.push("s:formula");
    }
    if text.trim_end().ends_with('?') {
        features.push("s:ends?");
    }
    let listed = text.lines().filter(|line| {
        let line = line.trim_start();
        line.starts_with("- ")
            || line.starts_with("* ")
            || line.split_once(". ").is_some_and(|(n, _)| n.parse::<u32>().is_ok())
    });
    if listed.count() >= 2 {
        features.push("s:list");
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(question: &str) -> Vec<String> {
        extract(question).into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn words_pairs_openers_and_character_grams_are_read_in_lower_case() {
        let features = names("How can I Sleep better?");
        for expected in
            ["w:sleep", "b:how_can", "o:how", "o:how_can", "c: sle", "c:eep ", "s:words<=5", "s:ends?"]
        {
            assert!(features.contains(&expected.to_owned()), "{expected} missing from {features:?}");
        }
        assert!(!features.iter().any(|f| f.contains("Sleep")));
    }

    #[test]
    fn code_formulas_and_lists_show_in_the_structure() {
        let features = names("Fix this:\n```\nfn main() { let x = a+b; }\n```");
        assert!(features.contains(&"s:code".to_owned()) && features.contains(&"s:formula".to_owned()));
        assert!(features.contains(&"s:lines>1".to_owned()));
        assert!(names("Rank these:\n1. tea\n2. coffee").contains(&"s:list".to_owned()));
    }

    #[test]
    fn the_vector_has_unit_length_and_no_repeated_feature() {
        let features = extract("the the the cat");
        let norm: f32 = features.iter().map(|(_, value)| value * value).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        let mut names: Vec<&String> = features.iter().map(|(name, _)| name).collect();
        names.dedup();
        assert_eq!(names.len(), features.len());
        assert!(extract("").iter().all(|(name, _)| name.starts_with("s:")));
    }
}
