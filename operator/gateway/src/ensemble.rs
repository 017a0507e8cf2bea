//! Ensemble selection: several SLM expansions of one point, keep the best (docs/design.md,
//! step 5) — by consensus (the candidate whose words overlap most with the others', Jaccard
//! similarity) or by the highest mean token log-probability when the backends return one.

use std::collections::HashSet;

use pice_api::EnsembleSelector;

/// One expansion of a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub mean_logprob: Option<f64>,
}

/// Index of the winning candidate; `None` when there is none. Ties go to the earlier one.
/// `Logprob` falls back to consensus when no candidate carries a log-probability.
pub fn select(candidates: &[Candidate], selector: EnsembleSelector) -> Option<usize> {
    if selector == EnsembleSelector::Logprob
        && let Some(best) = best_by_logprob(candidates)
    {
        return Some(best);
    }
    best_by_consensus(candidates)
}

fn best_by_logprob(candidates: &[Candidate]) -> Option<usize> {
    first_best(candidates.iter().enumerate().filter_map(|(index, c)| c.mean_logprob.map(|lp| (index, lp))))
}

fn best_by_consensus(candidates: &[Candidate]) -> Option<usize> {
    let words: Vec<HashSet<String>> = candidates.iter().map(|c| word_set(&c.text)).collect();
    first_best((0..candidates.len()).map(|index| {
        let agreement: f64 = (0..candidates.len())
            .filter(|&other| other != index)
            .map(|other| jaccard(&words[index], &words[other]))
            .sum();
        (index, agreement)
    }))
}

/// The index with the highest value; the first one on ties.
fn first_best(scored: impl Iterator<Item = (usize, f64)>) -> Option<usize> {
    scored
        .fold(None, |best: Option<(usize, f64)>, (index, value)| match best {
            Some((_, top)) if top >= value => best,
            _ => Some((index, value)),
        })
        .map(|(index, _)| index)
}

/// The lower-cased words of `text`, punctuation removed.
fn word_set(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// |A ∩ B| / |A ∪ B|; two empty sets are identical.
fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 { 1.0 } else { a.intersection(b).count() as f64 / union as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(text: &str, mean_logprob: Option<f64>) -> Candidate {
        Candidate { text: text.into(), mean_logprob }
    }

    #[test]
    fn consensus_keeps_the_candidate_closest_to_the_others() {
        let candidates = [
            candidate("Bees carry nectar home in their crops.", None),
            candidate("Bananas are yellow.", None),
            candidate("Bees carry nectar back to the hive in their crops.", None),
            candidate("Worker bees carry nectar to the hive.", None),
        ];
        assert_eq!(select(&candidates, EnsembleSelector::Consensus), Some(2));
    }

    #[test]
    fn logprob_keeps_the_most_confident_candidate_and_falls_back_to_consensus() {
        let candidates = [candidate("a b", Some(-1.2)), candidate("a c", Some(-0.4)), candidate("a b", None)];
        assert_eq!(select(&candidates, EnsembleSelector::Logprob), Some(1));
        let without = [candidate("x y", None), candidate("a b", None), candidate("a b", None)];
        assert_eq!(select(&without, EnsembleSelector::Logprob), Some(1));
    }

    #[test]
    fn nothing_to_choose_from_selects_nothing_and_one_candidate_wins_alone() {
        assert_eq!(select(&[], EnsembleSelector::Consensus), None);
        assert_eq!(select(&[candidate("only", None)], EnsembleSelector::Consensus), Some(0));
    }
}
