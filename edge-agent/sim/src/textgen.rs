//! The simulator's text generator: deterministic for a seed, shaped like what the prompt asked
//! for (a numbered sketch, a 1-3 sentence expansion that names its point, or prose).
//!
//! One simulated token is one word with its leading whitespace ([`tokenize`]), so token counts
//! are word counts; joining the tokens gives the text back exactly.

use super::ask::Ask;
use pice_wire::generation::FinishReason;

/// A finished simulated answer, token by token.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub tokens: Vec<String>,
    /// One pseudo log-probability per token (labelled simulated wherever it is returned).
    pub logprobs: Vec<f64>,
    pub finish_reason: FinishReason,
}

impl Generated {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }
}

/// Writes simulated answers; the same seed, prompt and budget always give the same text.
#[derive(Clone, Debug)]
pub struct TextGenerator {
    seed: u64,
}

impl TextGenerator {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Writes the answer to `ask` in at most `max_tokens` tokens; a request's own seed
    /// replaces the generator's.
    pub fn generate(&self, ask: &Ask, max_tokens: u32, request_seed: Option<u64>) -> Generated {
        let seed = request_seed.unwrap_or(self.seed) ^ fnv1a(&format!("{ask:?}"));
        let mut rng = SplitMix64(seed);
        let budget = max_tokens as usize;
        let text = match ask {
            Ask::Sketch { topic, points, words_per_point } => {
                sketch(&mut rng, &topic_words(topic), *points, *words_per_point)
            }
            Ask::Expand { point, .. } => expansion(&mut rng, point),
            Ask::Prose { topic } => prose(&mut rng, &topic_words(topic), budget),
        };
        let mut tokens = tokenize(&text);
        let finish_reason = if tokens.len() > budget {
            tokens.truncate(budget);
            FinishReason::Length
        } else if matches!(ask, Ask::Prose { .. }) {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let logprobs = tokens.iter().map(|_| -2.5 * rng.unit().powi(2) - 0.01).collect();
        Generated { tokens, logprobs, finish_reason }
    }
}

/// Splits text into simulated tokens: each is a whitespace run plus the word after it.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            tokens.push(std::mem::take(&mut current));
            in_word = false;
        }
        in_word |= !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

const VOCABULARY: [&str; 40] = [
    "system",
    "energy",
    "process",
    "design",
    "signal",
    "pressure",
    "balance",
    "network",
    "cost",
    "model",
    "layer",
    "surface",
    "memory",
    "current",
    "value",
    "structure",
    "light",
    "heat",
    "supply",
    "demand",
    "time",
    "scale",
    "risk",
    "change",
    "growth",
    "control",
    "flow",
    "measure",
    "practice",
    "result",
    "affects",
    "reduces",
    "improves",
    "depends",
    "carries",
    "stable",
    "local",
    "direct",
    "common",
    "typical",
];

const STOPWORDS: [&str; 12] =
    ["what", "which", "when", "where", "does", "that", "this", "with", "from", "about", "have", "your"];

const CONNECTORS: [&str; 4] = ["because", "which means", "so", "and in practice"];

fn topic_words(topic: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in topic.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if word.len() >= 4 && !STOPWORDS.contains(&word.as_str()) && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

fn sketch(rng: &mut SplitMix64, topic: &[String], points: u32, words_per_point: u32) -> String {
    (1..=points)
        .map(|number| format!("{number}. {}", capitalize(&phrase(rng, topic, words_per_point as usize))))
        .collect::<Vec<_>>()
        .join("\n")
}

fn expansion(rng: &mut SplitMix64, point: &str) -> String {
    let point = point.trim().trim_end_matches(['.', '!', '?', ';', ':']);
    let topic = topic_words(point);
    let connector = CONNECTORS[rng.below(CONNECTORS.len())];
    let length = 6 + rng.below(7);
    let mut text = format!("{} {connector} {}.", capitalize(point), phrase(rng, &topic, length));
    for _ in 0..rng.below(3) {
        let length = 8 + rng.below(7);
        text.push_str(&format!(" {}.", capitalize(&phrase(rng, &topic, length))));
    }
    text
}

fn prose(rng: &mut SplitMix64, topic: &[String], budget: usize) -> String {
    let mut sentences = Vec::new();
    let mut words = 0;
    while words <= budget {
        let length = 8 + rng.below(9);
        sentences.push(format!("{}.", capitalize(&phrase(rng, topic, length))));
        words += length;
    }
    sentences.join(" ")
}

/// `length` words, about a third of them from the topic, never the same word twice in a row.
fn phrase(rng: &mut SplitMix64, topic: &[String], length: usize) -> String {
    let mut words: Vec<&str> = Vec::with_capacity(length);
    while words.len() < length {
        let word = if !topic.is_empty() && rng.below(3) == 0 {
            topic[rng.below(topic.len())].as_str()
        } else {
            VOCABULARY[rng.below(VOCABULARY.len())]
        };
        if words.last() != Some(&word) {
            words.push(word);
        }
    }
    words.join(" ")
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// FNV-1a, to fold the prompt into the seed.
fn fnv1a(text: &str) -> u64 {
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast and stable across releases, which a
/// generator whose output tests pin down needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sketch_ask(points: u32) -> Ask {
        Ask::Sketch { topic: "How do vaccines train immunity?".into(), points, words_per_point: 6 }
    }

    /// A strict reader of `N. text` lines, as the gateway's sketch parser will be.
    fn parse_points(text: &str) -> Vec<String> {
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                let (number, point) = line.split_once(". ").unwrap();
                assert_eq!(number.parse::<usize>().unwrap(), i + 1, "{text}");
                point.to_owned()
            })
            .collect()
    }

    #[test]
    fn a_sketch_has_exactly_the_requested_number_of_parseable_points() {
        let generator = TextGenerator::new(3);
        for points in [1, 3, 7, 12] {
            let generated = generator.generate(&sketch_ask(points), 1000, None);
            let parsed = parse_points(&generated.text());
            assert_eq!(parsed.len(), points as usize);
            assert!(parsed.iter().all(|p| p.split_whitespace().count() == 6));
            assert_eq!(generated.finish_reason, FinishReason::Stop);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_text_and_another_seed_another() {
        let ask = Ask::Prose { topic: "Explain tides".into() };
        let a = TextGenerator::new(1).generate(&ask, 60, None);
        assert_eq!(a, TextGenerator::new(1).generate(&ask, 60, None));
        assert_ne!(a.text(), TextGenerator::new(2).generate(&ask, 60, None).text());
        let overridden = TextGenerator::new(2).generate(&ask, 60, Some(1));
        assert_eq!(a, overridden);
    }

    #[test]
    fn an_expansion_is_one_to_three_sentences_naming_its_point() {
        let generator = TextGenerator::new(0);
        let mut sentence_counts = Vec::new();
        for seed in 0..30 {
            let ask = Ask::Expand { number: 2, point: "Antibodies remember the shape.".into() };
            let text = generator.generate(&ask, 200, Some(seed)).text();
            assert!(text.starts_with("Antibodies remember the shape "), "{text}");
            sentence_counts.push(text.matches('.').count());
        }
        assert!(sentence_counts.iter().all(|n| (1..=3).contains(n)));
        assert!(sentence_counts.contains(&1) && sentence_counts.contains(&3));
    }

    #[test]
    fn prose_fills_the_budget_and_any_answer_is_cut_at_it() {
        let generator = TextGenerator::new(0);
        let prose = generator.generate(&Ask::Prose { topic: String::new() }, 37, None);
        assert_eq!((prose.tokens.len(), prose.finish_reason), (37, FinishReason::Length));
        assert_eq!(prose.logprobs.len(), 37);
        assert!(prose.logprobs.iter().all(|&l| (-2.51..0.0).contains(&l)));
        let cut = generator.generate(&sketch_ask(5), 4, None);
        assert_eq!((cut.tokens.len(), cut.finish_reason), (4, FinishReason::Length));
    }

    #[test]
    fn tokens_join_back_into_the_text() {
        let tokens = tokenize("1. Alpha  beta\n2. Gamma");
        assert_eq!(tokens, vec!["1.", " Alpha", "  beta", "\n2.", " Gamma"]);
        assert_eq!(tokenize(""), Vec::<String>::new());
    }
}
