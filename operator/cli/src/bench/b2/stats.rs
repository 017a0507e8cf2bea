//! B2's numbers: one run's requests/s and latency percentiles, the medians over repeated runs,
//! and a system's row of the result table (rendered here as Markdown).

use std::fmt::Write as _;

use super::super::stats::quantile;
use super::system::System;

/// One system's rows and the settings it ran with.
#[derive(Clone, Debug)]
pub struct Measured {
    pub system: System,
    pub settings: String,
    pub rows: Vec<Row>,
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// Answers completed per second.
    pub rate: f64,
    /// Latency percentiles, milliseconds.
    pub p50: f64,
    pub p99: f64,
    pub completed: usize,
    pub errors: usize,
    /// The first error, if any.
    pub first_error: Option<String>,
}

impl Run {
    /// A run from each client's latencies (seconds) and errors, over `elapsed` seconds.
    pub fn collect(clients: Vec<(Vec<f64>, Vec<String>)>, elapsed: f64) -> Self {
        let (mut latencies, mut errors) = (Vec::new(), Vec::new());
        for (some, failed) in clients {
            latencies.extend(some);
            errors.extend(failed);
        }
        Self {
            rate: latencies.len() as f64 / elapsed.max(f64::EPSILON),
            p50: quantile(&latencies, 0.5) * 1e3,
            p99: quantile(&latencies, 0.99) * 1e3,
            completed: latencies.len(),
            errors: errors.len(),
            first_error: errors.into_iter().next(),
        }
    }
}

/// The median of `values` (the upper one of an even count); NaN when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.into_iter().collect();
    quantile(&values, 0.5)
}

/// One system and response kind: medians of its saturation and fixed-rate runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub system: String,
    pub stream: bool,
    /// Requests/s with the closed-loop clients.
    pub saturation: f64,
    /// Latency at the fixed rate, milliseconds.
    pub p50: f64,
    pub p99: f64,
    /// Resident memory of its process tree after the load, MiB.
    pub rss_mib: f64,
    /// Failed requests over all runs.
    pub errors: usize,
    /// Why it has no numbers, or what went wrong.
    pub note: Option<String>,
}

impl Row {
    /// The medians of `saturation` and `fixed` runs.
    pub fn from_runs(system: &str, stream: bool, saturation: &[Run], fixed: &[Run], rss_mib: f64) -> Self {
        let all = saturation.iter().chain(fixed);
        let errors = all.clone().map(|run| run.errors).sum();
        let note = all
            .filter_map(|run| run.first_error.clone())
            .next()
            .map(|e| format!("{errors} errors, e.g. {e}"));
        Self {
            system: system.to_owned(),
            stream,
            saturation: median(saturation.iter().map(|run| run.rate)),
            p50: median(fixed.iter().map(|run| run.p50)),
            p99: median(fixed.iter().map(|run| run.p99)),
            rss_mib,
            errors,
            note,
        }
    }

    /// Adds `text` to the row's note.
    pub fn flag(&mut self, text: &str) {
        self.note = Some(match self.note.take() {
            Some(note) => format!("{text}; {note}"),
            None => text.to_owned(),
        });
    }

    /// A row without numbers, saying why.
    pub fn failed(system: &str, stream: bool, reason: &str) -> Self {
        Self {
            system: system.to_owned(),
            stream,
            saturation: f64::NAN,
            p50: f64::NAN,
            p99: f64::NAN,
            rss_mib: f64::NAN,
            errors: 0,
            note: Some(reason.to_owned()),
        }
    }
}

/// The result table: one line per row, with ratios and added latency against `direct` of the
/// same response kind; failure reasons are listed below it.
pub fn table(rows: &[Row]) -> String {
    let mut md = String::from(
        "| system | stream | req/s at saturation | × direct | p50 ms | p99 ms | added p50 ms | added p99 ms | RSS MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut notes = String::new();
    for row in rows {
        let direct = rows.iter().find(|r| r.stream == row.stream && r.system == rows[0].system);
        let (ratio, added50, added99) = match direct {
            Some(d) if !std::ptr::eq(d, row) => {
                (number(row.saturation / d.saturation, 2), ms(row.p50 - d.p50), ms(row.p99 - d.p99))
            }
            _ => ("1".into(), "—".into(), "—".into()),
        };
        let stream = if row.stream { "SSE" } else { "JSON" };
        let _ = writeln!(
            md,
            "| {}{} | {stream} | {} | {ratio} | {} | {} | {added50} | {added99} | {} |",
            row.system,
            if row.note.is_some() { " ¹" } else { "" },
            number(row.saturation, 0),
            ms(row.p50),
            ms(row.p99),
            number(row.rss_mib, 0),
        );
        if let Some(note) = &row.note {
            let _ = writeln!(notes, "- ¹ {} ({stream}): {}", row.system, one_line(note));
        }
    }
    if !notes.is_empty() {
        md.push('\n');
        md.push_str(&notes);
    }
    md
}

fn ms(value: f64) -> String {
    number(value, 2)
}

fn number(value: f64, decimals: usize) -> String {
    if value.is_finite() { format!("{value:.decimals$}") } else { "—".into() }
}

/// `text` on one line, at most 300 characters (a table note).
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "/");
    match flat.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: f64, p50: f64, p99: f64) -> Run {
        Run { rate, p50, p99, completed: 10, ..Run::default() }
    }

    #[test]
    fn a_run_counts_answers_per_second_and_takes_percentiles_in_milliseconds() {
        let latencies: Vec<f64> = (1..=100).map(|i| f64::from(i) / 1e3).collect();
        let run = Run::collect(vec![(latencies, vec!["boom".into()])], 2.0);
        assert_eq!((run.rate, run.completed, run.errors), (50.0, 100, 1));
        assert!((run.p50 - 50.0).abs() < 1e-9 && (run.p99 - 99.0).abs() < 1e-9, "{run:?}");
        assert_eq!(run.first_error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_row_takes_the_median_of_each_figure_over_the_runs() {
        let saturation = [run(100.0, 0.0, 0.0), run(300.0, 0.0, 0.0), run(200.0, 0.0, 0.0)];
        let fixed = [run(0.0, 1.0, 9.0), run(0.0, 3.0, 7.0), run(0.0, 2.0, 8.0)];
        let row = Row::from_runs("x", false, &saturation, &fixed, 12.0);
        assert_eq!((row.saturation, row.p50, row.p99), (200.0, 2.0, 8.0));
        assert_eq!((row.errors, row.note), (0, None));
    }

    #[test]
    fn the_table_compares_each_system_with_the_direct_backend_of_the_same_kind_and_notes_failures() {
        let row = |system: &str, stream, saturation, p50, p99| Row {
            system: system.into(),
            stream,
            saturation,
            p50,
            p99,
            rss_mib: 10.0,
            ..Row::default()
        };
        let rows = [
            row("direct", false, 1000.0, 1.0, 2.0),
            row("direct", true, 500.0, 2.0, 4.0),
            row("gw", false, 500.0, 1.5, 3.0),
            row("gw", true, 250.0, 2.25, 5.0),
            Row::failed("bad", true, "did not start:\nport | taken"),
        ];
        let md = table(&rows);
        assert!(md.contains("| direct | JSON | 1000 | 1 | 1.00 | 2.00 | — | — | 10 |"), "{md}");
        assert!(md.contains("| gw | JSON | 500 | 0.50 | 1.50 | 3.00 | 0.50 | 1.00 | 10 |"), "{md}");
        assert!(md.contains("| gw | SSE | 250 | 0.50 | 2.25 | 5.00 | 0.25 | 1.00 | 10 |"), "{md}");
        assert!(md.contains("| bad ¹ | SSE | — | — | — | — | — | — | — |"), "{md}");
        assert!(md.contains("- ¹ bad (SSE): did not start: port / taken"), "{md}");
    }
}
