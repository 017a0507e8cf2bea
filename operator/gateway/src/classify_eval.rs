//! `pice-gateway classify-eval`: measures the suitability classifier on labelled question sets
//! (semicolon-separated CSV with the header `label;request`, requests quoted when they hold
//! newlines, semicolons or quotes; label 1 = suitable).

use std::fmt;
use std::path::Path;

use super::suitability;

/// One labelled question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    pub suitable: bool,
    pub question: String,
}

/// How the classifier did on one set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub true_positive: usize,
    pub false_positive: usize,
    pub true_negative: usize,
    pub false_negative: usize,
}

impl Score {
    pub fn total(&self) -> usize {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    /// Share of questions classified as labelled.
    pub fn accuracy(&self) -> f64 {
        let correct = self.true_positive + self.true_negative;
        if self.total() == 0 { 0.0 } else { correct as f64 / self.total() as f64 }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} questions, accuracy {:.1} % (suitable: {} right, {} missed; unsuitable: {} right, {} sent progressive)",
            self.total(),
            100.0 * self.accuracy(),
            self.true_positive,
            self.false_negative,
            self.true_negative,
            self.false_positive
        )
    }
}

/// Classifies every question and counts the outcomes.
pub fn score(questions: &[Labelled]) -> Score {
    let mut score = Score::default();
    for question in questions {
        let predicted = suitability::classify(&question.question).suitable();
        match (question.suitable, predicted) {
            (true, true) => score.true_positive += 1,
            (true, false) => score.false_negative += 1,
            (false, false) => score.true_negative += 1,
            (false, true) => score.false_positive += 1,
        }
    }
    score
}

/// Reads a question file.
pub fn read(path: &Path) -> Result<Vec<Labelled>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the CSV text of a question file.
pub fn parse(text: &str) -> Result<Vec<Labelled>, String> {
    let records = records(text);
    let mut rows = records.into_iter();
    match rows.next() {
        Some(header) if header == ["label", "request"] => {}
        other => return Err(format!("expected the header label;request, found {other:?}")),
    }
    rows.enumerate()
        .filter(|(_, fields)| fields.iter().any(|f| !f.is_empty()))
        .map(|(row, fields)| match fields.as_slice() {
            [label, question] if label == "0" || label == "1" => {
                Ok(Labelled { suitable: label == "1", question: question.clone() })
            }
            _ => Err(format!("record {}: expected label (0 or 1);request, found {fields:?}", row + 2)),
        })
        .collect()
}

/// Splits CSV text into records of fields: `;` separates fields, `"` quotes a field that may
/// hold separators and newlines, `""` inside quotes is one quote.
fn records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ';') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field).trim_end_matches('\r').to_owned());
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoted_multi_line_requests_with_separators_and_quotes_parse() {
        let text = "label;request\r\n1;How can I sleep better?\r\n0;\"Fix this; code:\n\"\"x = 1\"\"\"\n\n";
        let questions = parse(text).unwrap();
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0], Labelled { suitable: true, question: "How can I sleep better?".into() });
        assert_eq!(questions[1].question, "Fix this; code:\n\"x = 1\"");
        assert!(!questions[1].suitable);
    }

    #[test]
    fn a_wrong_header_or_label_is_reported() {
        assert!(parse("question;label\n").unwrap_err().contains("header"));
        assert!(parse("label;request\n2;Why?\n").unwrap_err().contains("record 2"));
    }

    #[test]
    fn the_score_counts_each_outcome() {
        let questions = [
            Labelled { suitable: true, question: "What are some ways to save energy at home?".into() },
            Labelled { suitable: false, question: "Solve 3x + 1 = 7 for x.".into() },
            Labelled { suitable: true, question: "Solve 2 + 2.".into() },
        ];
        let score = score(&questions);
        assert_eq!((score.true_positive, score.true_negative, score.false_negative), (1, 1, 1));
        assert!((score.accuracy() - 2.0 / 3.0).abs() < 1e-9);
        assert!(score.to_string().starts_with("3 questions, accuracy 66.7 %"));
    }
}
