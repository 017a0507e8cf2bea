//! The sketch parser: reads the numbered points out of the text the cloud LLM wrote.
//!
//! Models do not write exactly what the prompt asks for, so the parser is lenient: `N.` and
//! `N)` numbering (1–99), optional list bullets or Markdown emphasis around the number, a
//! preamble before the list and wrapped continuation lines. It drops empty points and
//! duplicates (compared without case and punctuation) and keeps at most `max_points`.

/// The points of `text`, in order.
pub fn parse(text: &str, max_points: usize) -> Vec<String> {
    let mut points: Vec<String> = Vec::new();
    let mut in_list = false;
    for line in text.lines() {
        if let Some(point) = numbered_item(line) {
            points.push(point.to_owned());
            in_list = true;
        } else if line.trim().is_empty() {
            in_list = false;
        } else if in_list && let Some(last) = points.last_mut() {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    let mut kept: Vec<String> = Vec::new();
    for point in points {
        let point = clean(&point);
        let key = comparable(&point);
        if !key.is_empty() && !kept.iter().any(|k| comparable(k) == key) {
            kept.push(point);
        }
        if kept.len() == max_points {
            break;
        }
    }
    kept
}

/// The text after the number of a numbered line (`1. text`, `2) text`, `- **3.** text`).
fn numbered_item(line: &str) -> Option<&str> {
    let line = line.trim_start().trim_start_matches(['-', '*', '#', ' ']);
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let rest = &line[digits..];
    let rest = rest.strip_prefix(['.', ')'])?;
    let rest = rest.trim_start_matches('*');
    rest.starts_with(char::is_whitespace).then_some(rest)
}

/// A point without Markdown bold, surrounding whitespace and a trailing colon.
fn clean(text: &str) -> String {
    text.replace("**", "").trim().trim_end_matches(':').trim().to_owned()
}

/// What two points are compared by: lower-case letters and digits only.
fn comparable(point: &str) -> String {
    point.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Words in a point, the scheduler's measure of how long its expansion will be.
pub fn words(point: &str) -> usize {
    point.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_parenthesis_numbering_both_parse() {
        let text = "1. Rivers carry minerals\n2) Evaporation leaves salt behind\n3. Vents add chlorine";
        let points = parse(text, 8);
        assert_eq!(points, ["Rivers carry minerals", "Evaporation leaves salt behind", "Vents add chlorine"]);
    }

    #[test]
    fn preamble_bullets_emphasis_and_wrapped_lines_are_handled() {
        let text = "Here is an outline:\n\n- **1.** **Chlorophyll fades:** in autumn\n  as days shorten\n\
                    2. Carotenoids show\n\nHope this helps!";
        assert_eq!(parse(text, 8), ["Chlorophyll fades: in autumn as days shorten", "Carotenoids show"]);
    }

    #[test]
    fn empty_and_duplicate_points_are_dropped_and_the_count_is_capped() {
        let text = "1. Tides follow the moon\n2.  \n3. tides follow the Moon!\n4. The sun adds a little\n\
                    5. Coasts shape the range\n6. Winds add surges";
        assert_eq!(
            parse(text, 3),
            ["Tides follow the moon", "The sun adds a little", "Coasts shape the range"]
        );
    }

    #[test]
    fn text_without_numbered_lines_has_no_points() {
        assert!(parse("I cannot outline this; here is a plain answer.", 8).is_empty());
        assert!(parse("", 8).is_empty());
        assert!(parse("1.5 million people live there", 8).is_empty());
        assert!(parse("2024. A year", 8).is_empty());
    }

    #[test]
    fn words_counts_whitespace_separated_words() {
        assert_eq!(words("  Batteries  store the energy "), 4);
    }
}
