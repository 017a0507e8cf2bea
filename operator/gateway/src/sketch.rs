//! The sketch parser: reads the numbered points out of the text the cloud LLM writes, as it
//! streams in.
//!
//! Models do not write exactly what the prompt asks for, so the parser is lenient: `N.` and
//! `N)` numbering (1–99), optional list bullets or Markdown emphasis around the number, a
//! preamble before the list and wrapped continuation lines. It drops empty points and
//! duplicates (compared without case and punctuation) and keeps at most `max_points`.
//!
//! A point is complete once the text after it shows that nothing more belongs to it: the next
//! line begins a numbered item (its number and the space after it are enough), a blank line
//! ends the list, or the text ends. [`Outline`] gives each point out at that moment, so the
//! gateway can start expanding it while the cloud still writes the next ones; read in any
//! chunking, a text gives out the same points as [`parse`] finds in it whole.
//!
//! The sketch prompt lets the model answer directly when the question does not split into
//! points. [`Outline::declined`] sees that from the first lines, before any numbered item:
//! two lines that do not introduce a list (a preamble is a short line ending in `:`, a
//! heading, a bold title or a line naming the outline), one such line that is long or opens a
//! code block, a first line running past [`DECLINE_CHARS`], or a text that ends with no item
//! but some prose.

/// Characters of a first line without a numbered item after which the model is taken to be
/// answering directly.
pub const DECLINE_CHARS: usize = 240;

/// Longest line taken for a preamble before the list.
const PREAMBLE_CHARS: usize = 160;

/// A line before the list longer than this reads as the answer itself.
const ANSWER_LINE_CHARS: usize = 100;

/// The points of `text`, in order.
pub fn parse(text: &str, max_points: usize) -> Vec<String> {
    let mut outline = Outline::new(max_points);
    let mut points = outline.push(text);
    points.extend(outline.finish());
    points
}

/// A sketch being read as it streams.
#[derive(Debug)]
pub struct Outline {
    max_points: usize,
    /// The line being written (without its end).
    line: String,
    /// The last numbered item, whose wrapped continuation lines may still come.
    open: Option<String>,
    /// Whether the lines read last belong to a list (no blank line since its last item).
    in_list: bool,
    /// The points given out so far.
    kept: Vec<String>,
    /// Whether a numbered item was read.
    seen_item: bool,
    /// Lines before any item that do not introduce a list.
    loose_lines: usize,
    /// Whether text before any item shows a direct answer rather than an outline.
    declined: bool,
}

impl Outline {
    pub fn new(max_points: usize) -> Self {
        Self {
            max_points,
            line: String::new(),
            open: None,
            in_list: false,
            kept: Vec::new(),
            seen_item: false,
            loose_lines: 0,
            declined: false,
        }
    }

    /// Whether the model answered directly instead of writing an outline (decided before the
    /// first numbered item, never after).
    pub fn declined(&self) -> bool {
        self.declined
    }

    /// Reads the next piece of the sketch; gives out the points it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        let mut done = Vec::new();
        for piece in text.split_inclusive('\n') {
            self.line.push_str(piece);
            if let Some(line) = self.line.strip_suffix('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line).to_owned();
                self.line.clear();
                self.read_line(&line, &mut done);
            }
        }
        if self.open.is_some() && begins_item(&self.line) {
            self.close(&mut done);
        }
        if !self.seen_item && self.line.chars().count() > DECLINE_CHARS && !begins_item(&self.line) {
            self.declined = true;
        }
        done
    }

    /// Reads the end of the sketch; gives out the points it completed.
    pub fn finish(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.read_line(&line, &mut done);
        }
        self.close(&mut done);
        self.declined |= !self.seen_item && self.loose_lines > 0;
        done
    }

    /// The points given out so far.
    pub fn points(&self) -> &[String] {
        &self.kept
    }

    /// Whether no more point can be given out (`max_points` were).
    pub fn full(&self) -> bool {
        self.kept.len() >= self.max_points
    }

    fn read_line(&mut self, line: &str, done: &mut Vec<String>) {
        if let Some(point) = numbered_item(line) {
            self.close(done);
            self.open = Some(point.to_owned());
            self.in_list = true;
            self.seen_item = true;
        } else if line.trim().is_empty() {
            self.close(done);
            self.in_list = false;
        } else if self.in_list
            && let Some(open) = self.open.as_mut()
        {
            open.push(' ');
            open.push_str(line.trim());
        } else if !self.seen_item && !preamble(line) {
            self.loose_lines += 1;
            let answer_like =
                line.trim_start().starts_with("```") || line.chars().count() > ANSWER_LINE_CHARS;
            self.declined |= answer_like || self.loose_lines >= 2;
        }
    }

    /// Gives out the open item, unless it is empty, repeats a kept point or is one too many.
    fn close(&mut self, done: &mut Vec<String>) {
        let Some(point) = self.open.take() else { return };
        if self.full() {
            return;
        }
        let point = clean(&point);
        let key = comparable(&point);
        if !key.is_empty() && !self.kept.iter().any(|k| comparable(k) == key) {
            self.kept.push(point.clone());
            done.push(point);
        }
    }
}

/// Whether a line before the list introduces it: short, and ending in a colon, a heading, a
/// bold title, or naming the outline.
fn preamble(line: &str) -> bool {
    let line = line.trim();
    let lower = line.to_lowercase();
    line.chars().count() <= PREAMBLE_CHARS
        && (line.ends_with(':')
            || line.starts_with('#')
            || (line.starts_with("**") && line.ends_with("**"))
            || ["outline", "points", "list", "overview"].iter().any(|word| lower.contains(word)))
}

/// Whether an unfinished line already shows it begins a numbered item, whatever follows. A
/// trailing `\r` may be the start of the line's end, so it does not count yet.
fn begins_item(line: &str) -> bool {
    numbered_item(line.strip_suffix('\r').unwrap_or(line)).is_some()
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
    fn a_point_is_given_out_once_the_next_numbered_line_begins() {
        let mut outline = Outline::new(8);
        assert!(outline.push("Outline:\n1. Rivers carry").is_empty());
        assert!(outline.push(" minerals\n").is_empty(), "a continuation line may still come");
        assert!(outline.push("2").is_empty(), "'2' may begin '2024 was wet', a continuation");
        assert_eq!(outline.push(". "), ["Rivers carry minerals"]);
        assert!(outline.push("Evaporation\n   leaves salt\n\n").len() == 1);
        assert_eq!(outline.points(), ["Rivers carry minerals", "Evaporation leaves salt"]);
        assert!(outline.push("Hope this helps.").is_empty());
        assert!(outline.finish().is_empty());
    }

    #[test]
    fn the_last_point_is_given_out_when_the_text_ends_and_a_full_outline_takes_no_more() {
        let mut outline = Outline::new(2);
        assert_eq!(outline.push("1. A\n2. B"), ["A"]);
        assert!(!outline.full());
        assert_eq!(outline.finish(), ["B"]);
        assert!(outline.full());
        let mut outline = Outline::new(1);
        assert_eq!(outline.push("1. A\n2. B\n3. C\n"), ["A"]);
        assert!(outline.finish().is_empty());
    }

    #[test]
    fn a_carriage_return_at_the_end_of_a_chunk_waits_for_what_follows() {
        let mut outline = Outline::new(8);
        assert!(outline.push("1. A\r\n2.\r").is_empty(), "'2.' then a line end is no item");
        assert!(outline.push("\n").is_empty());
        assert_eq!(outline.finish(), ["A 2."]);
    }

    #[test]
    fn a_direct_answer_is_seen_from_its_first_line_and_a_preamble_is_not_one() {
        let mut outline = Outline::new(8);
        outline.push("Sure! Here is an outline of the answer.\n## Outline\n**Salt**\nWhy:\n");
        assert!(!outline.declined(), "preambles");
        outline.push("1. Rivers\n2. Vents\nThat is all: the sea keeps it.\n");
        assert!(!outline.declined(), "prose after the list is no decline");

        let mut direct = Outline::new(8);
        assert!(direct.push("```python\n").is_empty());
        assert!(direct.declined());
        let mut prose = Outline::new(8);
        prose.push("The answer is 42.\n");
        assert!(!prose.declined(), "one short line may still introduce a list");
        prose.push("Six times seven is forty-two.\n");
        assert!(prose.declined());
        let mut short = Outline::new(8);
        short.push("Paris.");
        assert!(!short.declined());
        short.finish();
        assert!(short.declined(), "a text that ends with prose and no item");
        let mut intro = Outline::new(8);
        intro.push("Here's what matters\n1. Rivers\n");
        intro.finish();
        assert!(!intro.declined());
        let mut long = Outline::new(8);
        long.push(&"word ".repeat(60));
        assert!(long.declined(), "a long first line with no item");
        let mut list = Outline::new(8);
        list.push(&format!("1. {}", "word ".repeat(60)));
        assert!(!list.declined(), "a long first item is still an item");
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
        fn any_chunking_of_a_text_gives_out_what_parse_finds_in_it_whole(
            text in prop_oneof![sketchy_text(), any::<String>()],
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            max_points in 0usize..12,
        ) {
            let mut bounds: Vec<usize> = cuts.iter().map(|cut| cut.index(text.len() + 1)).collect();
            bounds.extend([0, text.len()]);
            bounds.retain(|&b| text.is_char_boundary(b));
            bounds.sort_unstable();
            bounds.dedup();
            let mut outline = Outline::new(max_points);
            let mut streamed = Vec::new();
            for pair in bounds.windows(2) {
                streamed.extend(outline.push(&text[pair[0]..pair[1]]));
            }
            streamed.extend(outline.finish());
            prop_assert_eq!(&streamed, &parse(&text, max_points), "{:?} cut at {:?}", text, bounds);
            prop_assert_eq!(outline.points(), &streamed[..]);
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
