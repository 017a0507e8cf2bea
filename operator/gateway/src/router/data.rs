//! Labelled question files: semicolon-separated CSV with the header `label;request`, requests
//! quoted when they hold newlines, semicolons or quotes; label 1 = suitable for
//! sketch-and-expand. The router trains and is evaluated on them.

use std::path::Path;

/// One labelled question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    pub suitable: bool,
    pub question: String,
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
}
