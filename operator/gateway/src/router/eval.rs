//! Evaluating the router honestly: stratified k-fold cross-validation over the labelled sets
//! (vocabulary and weights fitted on each training fold alone, repeated with different fold
//! assignments), fixed splits, the old rules and the constant answer "unsuitable" side by side,
//! and what routing one request costs. `pice-gateway router eval` prints the result as Markdown.

use std::fmt::Write as _;
use std::time::Instant;

use super::data::Labelled;
use super::model::Router;
use super::train::{self, Settings};
use super::{features, rules};

/// Outcomes of predictions against labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_positive: usize,
    pub false_positive: usize,
    pub true_negative: usize,
    pub false_negative: usize,
}

impl Confusion {
    pub fn add(&mut self, suitable: bool, predicted: bool) {
        match (suitable, predicted) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_negative += 1,
            (false, false) => self.true_negative += 1,
            (false, true) => self.false_positive += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positive + self.true_negative, self.total())
    }

    /// Share of suitable questions found.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    /// Share of questions sent progressive that were suitable.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { f64::NAN } else { part as f64 / whole as f64 }
}

/// Mean and standard deviation of a measure over folds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
}

impl Spread {
    /// NaN when no value is finite (a measure undefined on every part).
    fn of(values: &[f64]) -> Self {
        let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return Self { mean: f64::NAN, sd: f64::NAN };
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self { mean, sd: variance.sqrt() }
    }
}

/// A classifier under evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classifier {
    /// The learned router, trained on the training part.
    Router,
    /// The weighted rules written before it (no training).
    Rules,
    /// "Unsuitable" for every question: what a router must beat.
    Constant,
}

impl Classifier {
    pub const ALL: [Self; 3] = [Self::Router, Self::Rules, Self::Constant];

    fn name(self) -> &'static str {
        match self {
            Self::Router => "learned router",
            Self::Rules => "old rules",
            Self::Constant => "always unsuitable",
        }
    }
}

/// A labelled question and the file it came from.
#[derive(Clone, Debug)]
pub struct Sample {
    pub set: usize,
    pub question: Labelled,
}

/// Per classifier, the confusion on each test part.
type Results = Vec<(Classifier, Vec<Confusion>)>;

/// Trains on `train` and predicts `test` with every classifier.
fn run_split(
    samples: &[Sample],
    extracted: &[Vec<(String, f32)>],
    train: &[usize],
    test: &[usize],
    settings: Settings,
) -> [Vec<bool>; 3] {
    let probabilities = router_probabilities(samples, extracted, train, test, settings);
    let learned = probabilities.iter().map(|&p| p >= settings.threshold).collect();
    let rules = test.iter().map(|&i| rules::classify(&samples[i].question.question).suitable()).collect();
    [learned, rules, vec![false; test.len()]]
}

/// The probabilities a router trained on `train` gives the questions of `test`.
fn router_probabilities(
    samples: &[Sample],
    extracted: &[Vec<(String, f32)>],
    train: &[usize],
    test: &[usize],
    settings: Settings,
) -> Vec<f64> {
    let questions: Vec<Labelled> = train.iter().map(|&i| samples[i].question.clone()).collect();
    let features: Vec<Vec<(String, f32)>> = train.iter().map(|&i| extracted[i].clone()).collect();
    let router = Router::from(&train::train_extracted(&features, &questions, settings, Vec::new()));
    test.iter().map(|&i| router.probability(&samples[i].question.question)).collect()
}

/// Cross-validated confusion of the router at each of `thresholds` (one repeat).
fn thresholds(samples: &[Sample], k: usize, settings: Settings, thresholds: &[f64]) -> Vec<Vec<Confusion>> {
    let extracted: Vec<Vec<(String, f32)>> =
        samples.iter().map(|s| features::extract(&s.question.question)).collect();
    let mut results = vec![Vec::new(); thresholds.len()];
    for test in &folds(samples, k, 1) {
        let train: Vec<usize> = (0..samples.len()).filter(|i| !test.contains(i)).collect();
        let probabilities = router_probabilities(samples, &extracted, &train, test, settings);
        for (slot, &threshold) in thresholds.iter().enumerate() {
            let mut fold = Confusion::default();
            for (&index, &p) in test.iter().zip(&probabilities) {
                fold.add(samples[index].question.suitable, p >= threshold);
            }
            results[slot].push(fold);
        }
    }
    results
}

/// Stratified folds: each class spread evenly, the order within a class shuffled by `seed`.
fn folds(samples: &[Sample], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut folds = vec![Vec::new(); k];
    for class in [true, false] {
        let mut members: Vec<usize> =
            (0..samples.len()).filter(|&i| samples[i].question.suitable == class).collect();
        members.sort_by_key(|&i| mix(i as u64, seed));
        for (position, index) in members.into_iter().enumerate() {
            folds[position % k].push(index);
        }
    }
    folds
}

/// A fixed, well-spread hash (SplitMix64) for shuffling without a random source.
fn mix(value: u64, seed: u64) -> u64 {
    let mut z =
        value.wrapping_add(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Cross-validation: `repeats` × `k` folds; per classifier the confusion of every fold, and
/// per set the out-of-fold confusion of the first repeat.
pub fn cross_validate(
    samples: &[Sample],
    sets: usize,
    k: usize,
    repeats: usize,
    settings: Settings,
) -> (Results, Vec<Results>) {
    let extracted: Vec<Vec<(String, f32)>> =
        samples.iter().map(|s| features::extract(&s.question.question)).collect();
    let mut results: Results = Classifier::ALL.iter().map(|&c| (c, Vec::new())).collect();
    let mut per_set: Vec<Results> = (0..sets)
        .map(|_| Classifier::ALL.iter().map(|&c| (c, vec![Confusion::default()])).collect())
        .collect();
    for repeat in 0..repeats {
        let folds = folds(samples, k, repeat as u64 + 1);
        for test in &folds {
            let train: Vec<usize> = (0..samples.len()).filter(|i| !test.contains(i)).collect();
            let predictions = run_split(samples, &extracted, &train, test, settings);
            for (slot, predicted) in predictions.iter().enumerate() {
                let mut fold = Confusion::default();
                for (&index, &guess) in test.iter().zip(predicted) {
                    let suitable = samples[index].question.suitable;
                    fold.add(suitable, guess);
                    if repeat == 0 {
                        per_set[samples[index].set][slot].1[0].add(suitable, guess);
                    }
                }
                results[slot].1.push(fold);
            }
        }
    }
    (results, per_set)
}

/// One fixed split: trains on `train`, tests on `test`.
pub fn split(samples: &[Sample], train: &[usize], test: &[usize], settings: Settings) -> Results {
    let extracted: Vec<Vec<(String, f32)>> =
        samples.iter().map(|s| features::extract(&s.question.question)).collect();
    let predictions = run_split(samples, &extracted, train, test, settings);
    Classifier::ALL
        .iter()
        .zip(predictions)
        .map(|(&classifier, predicted)| {
            let mut confusion = Confusion::default();
            for (&index, guess) in test.iter().zip(predicted) {
                confusion.add(samples[index].question.suitable, guess);
            }
            (classifier, vec![confusion])
        })
        .collect()
}

/// Microseconds `router` takes per question, as (p50, p99, max) over `rounds` passes.
pub fn cost(router: &Router, questions: &[Labelled], rounds: usize) -> (f64, f64, f64) {
    let mut times: Vec<f64> = Vec::with_capacity(questions.len() * rounds);
    for _ in 0..rounds {
        for question in questions {
            let started = Instant::now();
            std::hint::black_box(router.suitable(std::hint::black_box(&question.question)));
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times.get(((q * times.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99), times.last().copied().unwrap_or(f64::NAN))
}

/// A Markdown table of `results`: mean ± sd of each measure over the parts.
pub fn table(results: &Results) -> String {
    let mut md =
        String::from("| classifier | accuracy | suitable recall | suitable precision |\n|---|---|---|---|\n");
    for (classifier, parts) in results {
        let measure = |f: fn(&Confusion) -> f64| {
            let spread = Spread::of(&parts.iter().map(f).collect::<Vec<_>>());
            if !spread.mean.is_finite() {
                "–".to_owned()
            } else if parts.len() > 1 {
                format!("{:.1} % ± {:.1}", 100.0 * spread.mean, 100.0 * spread.sd)
            } else {
                format!("{:.1} %", 100.0 * spread.mean)
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            classifier.name(),
            measure(Confusion::accuracy),
            measure(Confusion::recall),
            measure(Confusion::precision)
        );
    }
    md
}

/// What `pice-gateway router eval` measures.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The labelled files, by name, with their questions.
    pub sets: Vec<(String, Vec<Labelled>)>,
    pub folds: usize,
    pub repeats: usize,
    /// L2 penalties to compare; the first one is used for everything else.
    pub regularizations: Vec<f64>,
    /// A set (index into `sets`) to hold out whole: trained on the others, tested on it.
    pub holdout: Option<usize>,
}

/// Runs `plan` and writes the Markdown report; `router` is timed.
pub fn report(plan: &Plan, router: &Router) -> String {
    let samples: Vec<Sample> = plan
        .sets
        .iter()
        .enumerate()
        .flat_map(|(set, (_, questions))| questions.iter().map(move |q| Sample { set, question: q.clone() }))
        .collect();
    let regularization = plan.regularizations.first().copied().unwrap_or(Settings::default().regularization);
    let settings = Settings { regularization, ..Settings::default() };
    let mut md = String::from("## Data\n\n| set | questions | suitable |\n|---|---|---|\n");
    for (name, questions) in &plan.sets {
        let suitable = questions.iter().filter(|q| q.suitable).count();
        let _ = writeln!(
            md,
            "| {name} | {} | {suitable} ({:.0} %) |",
            questions.len(),
            100.0 * ratio(suitable, questions.len())
        );
    }
    let (results, per_set) = cross_validate(&samples, plan.sets.len(), plan.folds, plan.repeats, settings);
    let _ = writeln!(
        md,
        "\n## {}-fold cross-validation, {} repeats, all sets pooled (regularization {regularization})\n\nStratified folds; the router's vocabulary and weights come from the training folds alone. Mean ± standard deviation over the {} test folds.\n\n{}",
        plan.folds,
        plan.repeats,
        plan.folds * plan.repeats,
        table(&results)
    );
    for ((name, _), results) in plan.sets.iter().zip(&per_set) {
        let _ = writeln!(md, "### {name}, out of fold (first repeat)\n\n{}", table(results));
    }
    let (train, test): (Vec<usize>, Vec<usize>) = {
        let mut position = vec![0usize; plan.sets.len()];
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (index, sample) in samples.iter().enumerate() {
            position[sample.set] += 1;
            if position[sample.set].is_multiple_of(5) { test.push(index) } else { train.push(index) }
        }
        (train, test)
    };
    let _ = writeln!(
        md,
        "## Fixed split: every fifth question of each set held out\n\nTrained on {} questions, tested on {}.\n\n{}",
        train.len(),
        test.len(),
        table(&split(&samples, &train, &test, settings))
    );
    if let Some(holdout) = plan.holdout {
        let (test, train): (Vec<usize>, Vec<usize>) =
            (0..samples.len()).partition(|&i| samples[i].set == holdout);
        let _ = writeln!(
            md,
            "## Fixed split: {} held out whole\n\nTrained on the other sets ({} questions), tested on {} questions it never saw the like of.\n\n{}",
            plan.sets[holdout].0,
            train.len(),
            test.len(),
            table(&split(&samples, &train, &test, settings))
        );
    }
    if plan.regularizations.len() > 1 {
        md.push_str("## Regularization\n\n| regularization | accuracy | suitable recall | suitable precision |\n|---|---|---|---|\n");
        for &regularization in &plan.regularizations {
            let settings = Settings { regularization, ..Settings::default() };
            let (results, _) = cross_validate(&samples, plan.sets.len(), plan.folds, 1, settings);
            let row = table(&results[..1].to_vec());
            let cells = row.lines().nth(2).unwrap_or_default().trim_start_matches("| learned router");
            let _ = writeln!(md, "| {regularization}{cells}");
        }
        md.push('\n');
    }
    md.push_str("## Threshold\n\nThe router's probability from which a question counts as suitable (one repeat).\n\n| threshold | accuracy | suitable recall | suitable precision |\n|---|---|---|---|\n");
    let grid = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7];
    for (threshold, parts) in grid.iter().zip(thresholds(&samples, plan.folds, settings, &grid)) {
        let row = table(&vec![(Classifier::Router, parts)]);
        let cells = row.lines().nth(2).unwrap_or_default().trim_start_matches("| learned router");
        let _ = writeln!(md, "| {threshold}{cells}");
    }
    md.push('\n');
    let questions: Vec<Labelled> = samples.iter().map(|s| s.question.clone()).collect();
    let (p50, p99, max) = cost(router, &questions, 20);
    let _ = writeln!(
        md,
        "## Cost per request\n\nThe model in use, on every question above 20 times ({} calls, one thread): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs.",
        questions.len() * 20
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_follow_the_confusion() {
        let mut confusion = Confusion::default();
        for (label, guess) in [(true, true), (true, false), (false, false), (false, false), (false, true)] {
            confusion.add(label, guess);
        }
        assert_eq!(confusion.total(), 5);
        assert!((confusion.accuracy() - 0.6).abs() < 1e-9);
        assert!((confusion.recall() - 0.5).abs() < 1e-9);
        assert!((confusion.precision() - 0.5).abs() < 1e-9);
        assert!(Confusion::default().recall().is_nan());
    }

    #[test]
    fn folds_are_stratified_disjoint_and_cover_every_sample() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| Sample {
                set: 0,
                question: Labelled { suitable: i % 5 == 0, question: format!("q{i}") },
            })
            .collect();
        let folds = folds(&samples, 5, 1);
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        for fold in &folds {
            assert_eq!(fold.iter().filter(|&&i| samples[i].question.suitable).count(), 2);
        }
        assert_ne!(folds, super::folds(&samples, 5, 2), "another seed, another assignment");
    }

    #[test]
    fn the_spread_is_the_sample_standard_deviation() {
        let spread = Spread::of(&[1.0, 3.0, f64::NAN]);
        assert_eq!((spread.mean, spread.sd), (2.0, 2f64.sqrt()));
        assert!(Spread::of(&[f64::NAN]).mean.is_nan());
    }
}
