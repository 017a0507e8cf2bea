//! Reading the Prometheus text format: the samples of one metric with their labels, and a
//! quantile estimated from a histogram's buckets.

use std::collections::BTreeMap;

/// One sample: its labels and its value.
pub type Sample = (BTreeMap<String, String>, f64);

/// The samples of metric `name` (exactly: `name_bucket` is another metric) in `text`.
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    let sample = |line: &str| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(inner) => inner.rsplit_once('}').map(|(labels, value)| (parse_labels(labels), value))?,
            None if rest.starts_with(' ') => (BTreeMap::new(), rest),
            None => return None,
        };
        Some((labels, parse_value(value.split_whitespace().next()?)?))
    };
    text.lines().filter(|line| !line.starts_with('#')).filter_map(sample).collect()
}

/// The `q` quantile (0–1) of histogram `name` (its `name_bucket` series, summed over their other
/// labels), interpolated linearly inside its bucket as PromQL's `histogram_quantile` does;
/// `None` without observations.
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (labels, count) in samples(text, &format!("{name}_bucket")) {
        let le = parse_value(labels.get("le")?)?;
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, sum)) => *sum += count,
            None => buckets.push((le, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (upper, count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                return Some(lower);
            }
            let share = if count > below { (rank - below) / (count - below) } else { 0.0 };
            return Some(lower + (upper - lower) * share);
        }
        (lower, below) = (upper, count);
    }
    None
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `a="x",b="y\"z"` as a map (values unescaped).
fn parse_labels(mut text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while let Some((key, after)) = text.split_once("=\"") {
        let (mut value, mut end, mut escaped) = (String::new(), after.len(), false);
        for (i, c) in after.char_indices() {
            if escaped {
                value.push(if c == 'n' { '\n' } else { c });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = i + 1;
                break;
            } else {
                value.push(c);
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        text = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP h a histogram\n\
        h_bucket{le=\"0.1\"} 50\nh_bucket{le=\"1\"} 90\nh_bucket{le=\"+Inf\"} 100\nh_sum 40\nh_count 100\n\
        c{verb=\"GET\",path=\"a,\\\"b\\\"\"} 3\nc{verb=\"LIST\"} 4\nc_other 9\n";

    #[test]
    fn samples_keep_labels_and_skip_other_metrics() {
        let c = samples(TEXT, "c");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0["path"], "a,\"b\"");
        assert_eq!(c[0].0["verb"], "GET");
        assert_eq!(c[1].1, 4.0);
        assert_eq!(samples(TEXT, "h_sum"), vec![(BTreeMap::new(), 40.0)]);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        assert_eq!(histogram_quantile(TEXT, "h", 0.5), Some(0.1));
        let p70 = histogram_quantile(TEXT, "h", 0.7).unwrap_or_default();
        assert!((p70 - 0.55).abs() < 1e-9, "{p70}");
        assert_eq!(histogram_quantile(TEXT, "h", 0.99), Some(1.0), "in +Inf: the last finite bound");
        assert_eq!(histogram_quantile("", "h", 0.5), None);
    }
}
