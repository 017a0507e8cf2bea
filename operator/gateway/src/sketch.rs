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
        if kept.len() == max_points {
            break;
        }
        let point = clean(&point);
        let key = comparable(&point);
        if !key.is_empty() && !kept.iter().any(|k| comparable(k) == key) {
            kept.push(point);
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

/// A point without Markdown bold, surrounding whitespace and trailing colons.
fn clean(text: &str) -> String {
    text.replace("**", "").trim_start().trim_end_matches(|c: char| c == ':' || c.is_whitespace()).to_owned()
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
    fn a_cap_of_zero_points_keeps_none() {
        assert!(parse("1. A", 0).is_empty());
    }

    #[test]
    fn colons_spaced_out_at_the_end_of_a_point_are_all_dropped() {
        assert_eq!(parse("1. 0: :", 8), ["0"]);
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

#[cfg(test)]
mod properties {
    //! Property tests: the parser never panics and keeps its promises on any text (at most
    //! `max_points` points, each non-empty, trimmed, without bold or a trailing colon, no two
    //! alike), and a well-formed numbered list in any of the styles it documents reads back as
    //! its points. `PROPTEST_CASES` sets the number of cases (256 by default).
    use proptest::prelude::*;

    use super::*;

    /// Text that looks enough like a sketch to reach every branch of the parser: numbers of any
    /// length, bullets, bold, colons, lone `\r`, blank lines, unicode.
    fn sketchy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[0-9]{1,24}[.)]?",
            prop::sample::select(vec![
                "1. ",
                "2) ",
                "99. ",
                "100. ",
                "99999999999999999999. ",
                "0. ",
                "- ",
                "* ",
                "## ",
                "**",
                "***",
                ":",
                " :",
                "\n",
                "\r\n",
                "\r",
                "\n\n",
                "  ",
                "\t",
                "é",
                "ß",
                "İ",
                "中",
                "😀",
                "\u{200b}",
                "\u{a0}",
                "\u{2028}",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z ]{1,8}",
            ".{1,4}",
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    /// A point as a model writes it: words of letters (some non-ASCII) with inner punctuation.
    fn point() -> impl Strategy<Value = String> {
        let word = "[a-zA-Zéüß中Жİ]{1,8}[,;:]?";
        (prop::collection::vec(word, 0..6), "[a-zA-Zéüß中Жİ]{1,8}")
            .prop_map(|(words, last)| words.into_iter().chain([last]).collect::<Vec<_>>().join(" "))
    }

    /// Points that the parser must keep apart.
    fn distinct_points() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(point(), 1..10).prop_map(|points| {
            let mut kept: Vec<String> = Vec::new();
            for point in points {
                if !kept.iter().any(|k| comparable(k) == comparable(&point)) {
                    kept.push(point);
                }
            }
            kept
        })
    }

    /// How one point is written: number, its terminator, bullet, bold, wrapping.
    #[derive(Clone, Debug)]
    struct Style {
        number: u8,
        parenthesis: bool,
        bullet: &'static str,
        bold: Bold,
        /// Word counts after which the point wraps onto an indented continuation line.
        wrap_after: Vec<usize>,
    }

    #[derive(Clone, Copy, Debug)]
    enum Bold {
        None,
        Number,
        Point,
        FirstWords(usize),
    }

    fn style() -> impl Strategy<Value = Style> {
        let bold = prop_oneof![
            Just(Bold::None),
            Just(Bold::Number),
            Just(Bold::Point),
            (1usize..4).prop_map(Bold::FirstWords),
        ];
        (
            1u8..=99,
            any::<bool>(),
            prop::sample::select(vec!["", "- ", "* ", "### ", "  "]),
            bold,
            prop::collection::vec(1usize..6, 0..3),
        )
            .prop_map(|(number, parenthesis, bullet, bold, wrap_after)| Style {
                number,
                parenthesis,
                bullet,
                bold,
                wrap_after,
            })
    }

    /// `point` written in `style`, one or more lines.
    fn write(point: &str, style: &Style) -> Vec<String> {
        let words: Vec<&str> = point.split(' ').collect();
        let text = match style.bold {
            Bold::FirstWords(n) if n < words.len() => {
                format!("**{}** {}", words[..n].join(" "), words[n..].join(" "))
            }
            Bold::Point => format!("**{point}**"),
            _ => point.to_owned(),
        };
        let terminator = if style.parenthesis { ')' } else { '.' };
        let number = match style.bold {
            Bold::Number => format!("**{}{terminator}**", style.number),
            _ => format!("{}{terminator}", style.number),
        };
        let mut words: Vec<&str> = text.split(' ').collect();
        let mut lines = Vec::new();
        for &after in &style.wrap_after {
            if after >= words.len() {
                break;
            }
            let rest = words.split_off(after);
            lines.push(words.join(" "));
            words = rest;
        }
        lines.push(words.join(" "));
        lines[0] = format!("{}{number} {}", style.bullet, lines[0]);
        for line in &mut lines[1..] {
            line.insert_str(0, "   ");
        }
        lines
    }

    fn sketch(points: &[String], styles: &[Style], preamble: bool, outro: bool, crlf: bool) -> String {
        let mut lines: Vec<String> = Vec::new();
        if preamble {
            lines.extend(["Here is an outline of the answer:".to_owned(), String::new()]);
        }
        for (point, style) in points.iter().zip(styles.iter().cycle()) {
            lines.extend(write(point, style));
        }
        if outro {
            lines.extend([String::new(), "Hope this helps: ask again!".to_owned()]);
        }
        lines.join(if crlf { "\r\n" } else { "\n" })
    }

    proptest! {
        #[test]
        fn any_text_parses_into_at_most_max_points_clean_distinct_points(
            text in prop_oneof![sketchy_text(), any::<String>()],
            max_points in 0usize..12,
        ) {
            let points = parse(&text, max_points);
            prop_assert!(points.len() <= max_points, "{:?}", points);
            for (i, point) in points.iter().enumerate() {
                prop_assert!(!comparable(point).is_empty(), "{:?}", point);
                prop_assert_eq!(point.trim(), point);
                prop_assert!(!point.contains("**") && !point.ends_with(':'), "{:?}", point);
                prop_assert!(points[..i].iter().all(|p| comparable(p) != comparable(point)), "{:?}", points);
            }
        }

        #[test]
        fn a_numbered_list_reads_back_as_its_points(
            points in distinct_points(),
            styles in prop::collection::vec(style(), 1..4),
            preamble in any::<bool>(),
            outro in any::<bool>(),
            crlf in any::<bool>(),
            max_points in 1usize..12,
        ) {
            let text = sketch(&points, &styles, preamble, outro, crlf);
            let kept = &points[..points.len().min(max_points)];
            prop_assert_eq!(parse(&text, max_points), kept, "{}", text);
        }
    }
}
