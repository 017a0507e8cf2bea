//! Reading PromQL as text, for the checks of the shipped dashboards and alert rules: which
//! metrics an expression names, which labels it groups by, and the expression with its
//! comparisons turned into `bool` ones.

use std::collections::BTreeSet;

/// The `pice_*` metric names in `text` (series names as written: `_bucket`, `_sum`, `_count`
/// included).
pub fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("pice_"))
        .map(str::to_owned)
        .collect()
}

/// The labels of every `by (...)` clause of `expr`.
pub fn grouping_labels(expr: &str) -> BTreeSet<String> {
    expr.split("by (")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .flat_map(|(labels, _)| labels.split(',').map(|l| l.trim().to_owned()))
        .filter(|label| !label.is_empty())
        .collect()
}

/// `expr` with `bool` after every comparison operator outside label matchers and strings, so
/// that an alert's expression returns its series (0 or 1) whether or not the alert fires.
pub fn with_bool(expr: &str) -> String {
    let (mut out, mut braces, mut quoted) = (String::with_capacity(expr.len() + 16), 0usize, false);
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => out.extend(chars.next()),
            '{' if !quoted => braces += 1,
            '}' if !quoted => braces = braces.saturating_sub(1),
            '>' | '<' | '=' | '!' if !quoted && braces == 0 => {
                let second = chars.next_if_eq(&'=');
                out.extend(second);
                if matches!(c, '>' | '<') || second.is_some() {
                    out.push_str(" bool");
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_become_bool_and_label_matchers_stay() {
        let expr = r#"sum(x{a!="b", c=~"d>"}) >= 2 or y < z and w{e="f"} != 0"#;
        assert_eq!(
            with_bool(expr),
            r#"sum(x{a!="b", c=~"d>"}) >= bool 2 or y < bool z and w{e="f"} != bool 0"#
        );
    }

    #[test]
    fn names_and_grouping_labels_are_read_from_the_text() {
        let expr =
            "histogram_quantile(0.5, sum by (pool, le) (rate(pice_a_bucket{pool=~\"$pool\"}[1m]))) / pice_b";
        assert_eq!(metric_names(expr), ["pice_a_bucket".to_owned(), "pice_b".to_owned()].into());
        assert_eq!(grouping_labels(expr), ["le".to_owned(), "pool".to_owned()].into());
    }
}
