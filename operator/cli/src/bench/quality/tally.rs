//! Counting pairwise outcomes: each question's two judgements (both orders) combine into a win,
//! tie or loss for the progressive answer, and rates get 95 % Wilson intervals.

use super::judge::Verdict;

/// How the progressive answer fared on one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Win,
    Tie,
    Loss,
}

/// Combines the judgements with progressive shown second (`progressive_second`) and first
/// (`progressive_first`): a side must win one order without losing the other, so a judge that
/// always prefers one position yields a tie.
pub fn combine(progressive_second: Verdict, progressive_first: Verdict) -> Outcome {
    let score = |verdict: Verdict, progressive: Verdict| match verdict {
        v if v == progressive => 1,
        Verdict::Tie | Verdict::Unclear => 0,
        _ => -1,
    };
    match score(progressive_second, Verdict::B) + score(progressive_first, Verdict::A) {
        s if s > 0 => Outcome::Win,
        0 => Outcome::Tie,
        _ => Outcome::Loss,
    }
}

/// Outcomes of a group of questions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Win => self.wins += 1,
            Outcome::Tie => self.ties += 1,
            Outcome::Loss => self.losses += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.wins + self.ties + self.losses
    }
}

/// The 95 % Wilson score interval of `successes` out of `n`, as (low, high).
pub fn wilson(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (z, n, p) = (1.96_f64, n as f64, successes as f64 / n as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_must_win_an_order_without_losing_the_other() {
        assert_eq!(combine(Verdict::B, Verdict::A), Outcome::Win);
        assert_eq!(combine(Verdict::B, Verdict::Tie), Outcome::Win);
        assert_eq!(combine(Verdict::A, Verdict::B), Outcome::Loss);
        assert_eq!(combine(Verdict::A, Verdict::A), Outcome::Tie, "a judge that always says A");
        assert_eq!(combine(Verdict::Unclear, Verdict::Tie), Outcome::Tie);
    }

    #[test]
    fn the_wilson_interval_holds_the_rate_and_narrows_with_more_questions() {
        let (low, high) = wilson(5, 10);
        assert!(low < 0.5 && 0.5 < high);
        let (low_more, high_more) = wilson(50, 100);
        assert!(high_more - low_more < high - low);
        assert!((wilson(0, 10).0).abs() < 1e-12 && wilson(10, 10).1 <= 1.0);
        assert!(wilson(0, 0).0.is_nan());
    }
}
