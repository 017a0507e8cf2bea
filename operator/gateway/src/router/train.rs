//! Training the router: L2-regularised logistic regression, fitted by Nesterov-accelerated
//! full-batch gradient descent for a fixed number of steps from zero weights. No randomness
//! and a fixed summation order: the same questions give the same file, bit for bit.
//!
//! Why this model: a few thousand labelled questions support a linear model over sparse word
//! and character features well (and little more); it scores a question in microseconds, its
//! weights can be read and diffed, and retraining on a user's own traffic takes a second.
//! The two classes weigh equally in the loss, whatever their counts, so the rarer suitable
//! class is not simply predicted away.

use std::collections::{BTreeMap, HashMap};

use super::data::Labelled;
use super::features;
use super::model::{FORMAT, ModelFile};

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// L2 penalty on the weights (not the bias).
    pub regularization: f64,
    /// Gradient steps.
    pub steps: usize,
    /// Questions a feature must occur in to get a weight.
    pub min_count: usize,
    /// Weights smaller than this are left out of the file.
    pub prune_below: f64,
    /// Probability from which a question counts as suitable.
    pub threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { regularization: 1e-3, steps: 400, min_count: 2, prune_below: 1e-3, threshold: 0.5 }
    }
}

/// A question as the trainer sees it: feature indexes with their values, and the label.
struct Example {
    features: Vec<(usize, f64)>,
    suitable: bool,
}

/// Fits a model to `questions`; `trained_on` is recorded in the file.
pub fn train(
    questions: &[Labelled],
    settings: Settings,
    trained_on: Vec<super::model::TrainingSet>,
) -> ModelFile {
    let extracted: Vec<Vec<(String, f32)>> =
        questions.iter().map(|q| features::extract(&q.question)).collect();
    train_extracted(&extracted, questions, settings, trained_on)
}

/// [`train`] on features already extracted (cross-validation extracts once).
pub fn train_extracted(
    extracted: &[Vec<(String, f32)>],
    questions: &[Labelled],
    settings: Settings,
    trained_on: Vec<super::model::TrainingSet>,
) -> ModelFile {
    let vocabulary = vocabulary(extracted, settings.min_count);
    let examples: Vec<Example> = extracted
        .iter()
        .zip(questions)
        .map(|(features, question)| Example {
            features: features
                .iter()
                .filter_map(|(name, value)| vocabulary.get(name).map(|&index| (index, f64::from(*value))))
                .collect(),
            suitable: question.suitable,
        })
        .collect();
    let (weights, bias) = fit(&examples, vocabulary.len(), settings);
    let mut names: Vec<&str> = vec![""; vocabulary.len()];
    for (name, &index) in &vocabulary {
        names[index] = name;
    }
    let weights: BTreeMap<String, f64> = weights
        .iter()
        .enumerate()
        .filter(|(_, weight)| weight.abs() >= settings.prune_below)
        .map(|(index, weight)| (names[index].to_owned(), round(*weight)))
        .collect();
    ModelFile {
        format: FORMAT.to_owned(),
        trained_on,
        regularization: settings.regularization,
        threshold: settings.threshold,
        bias: round(bias),
        weights,
    }
}

/// Features that occur in at least `min_count` questions, indexed in sorted order.
fn vocabulary(extracted: &[Vec<(String, f32)>], min_count: usize) -> BTreeMap<String, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for features in extracted {
        for (name, _) in features {
            *counts.entry(name.as_str()).or_insert(0) += 1;
        }
    }
    let mut kept: Vec<&str> =
        counts.into_iter().filter(|(_, count)| *count >= min_count).map(|(name, _)| name).collect();
    kept.sort_unstable();
    kept.into_iter().enumerate().map(|(index, name)| (name.to_owned(), index)).collect()
}

/// Minimises the class-balanced log loss plus `regularization / 2 · |w|²`; returns the
/// weights and the bias.
fn fit(examples: &[Example], dimensions: usize, settings: Settings) -> (Vec<f64>, f64) {
    let positives = examples.iter().filter(|e| e.suitable).count().max(1) as f64;
    let negatives = examples.iter().filter(|e| !e.suitable).count().max(1) as f64;
    let total = examples.len().max(1) as f64;
    let class_weight =
        |suitable: bool| if suitable { total / (2.0 * positives) } else { total / (2.0 * negatives) };
    // Every example has unit length, so the loss's gradient is Lipschitz with at most
    // max(class weight) / 4 (+ 1 for the bias) + regularization.
    let largest = class_weight(true).max(class_weight(false));
    let step = 1.0 / (largest * 0.25 * 2.0 + settings.regularization);
    let mut weights = vec![0.0; dimensions + 1];
    let mut previous = weights.clone();
    for iteration in 0..settings.steps {
        let momentum = iteration as f64 / (iteration as f64 + 3.0);
        let look: Vec<f64> = weights.iter().zip(&previous).map(|(w, p)| w + momentum * (w - p)).collect();
        let gradient = gradient(examples, &look, settings.regularization, &class_weight, total);
        previous =
            std::mem::replace(&mut weights, look.iter().zip(&gradient).map(|(w, g)| w - step * g).collect());
    }
    let bias = weights.pop().unwrap_or(0.0);
    (weights, bias)
}

/// The gradient of the objective at `weights` (the bias last).
fn gradient(
    examples: &[Example],
    weights: &[f64],
    regularization: f64,
    class_weight: &impl Fn(bool) -> f64,
    total: f64,
) -> Vec<f64> {
    let bias_index = weights.len() - 1;
    let mut gradient: Vec<f64> = weights.iter().map(|w| regularization * w).collect();
    gradient[bias_index] = 0.0;
    for example in examples {
        let score: f64 = example.features.iter().map(|(index, value)| weights[*index] * value).sum::<f64>()
            + weights[bias_index];
        let probability = 1.0 / (1.0 + (-score).exp());
        let error =
            class_weight(example.suitable) * (probability - f64::from(u8::from(example.suitable))) / total;
        for (index, value) in &example.features {
            gradient[*index] += error * value;
        }
        gradient[bias_index] += error;
    }
    gradient
}

/// Six decimals: enough for the scores, short in the file.
fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::model::Router;

    fn labelled(question: &str, suitable: bool) -> Labelled {
        Labelled { suitable, question: question.to_owned() }
    }

    fn toy() -> Vec<Labelled> {
        let mut questions = Vec::new();
        for topic in ["sleep", "energy", "money", "stress", "study", "health"] {
            questions.push(labelled(&format!("What are some ways to improve {topic}?"), true));
            questions.push(labelled(&format!("How can I manage my {topic} better?"), true));
            questions.push(labelled(&format!("Write a Python function about {topic}."), false));
            questions.push(labelled(&format!("Solve 3x + 1 = 7 for {topic}."), false));
        }
        questions
    }

    #[test]
    fn a_model_learns_a_separable_set_and_generalises_to_new_words() {
        let file = train(&toy(), Settings::default(), Vec::new());
        let router = Router::from(&file);
        assert!(router.suitable("What are some ways to improve travel?"));
        assert!(!router.suitable("Write a Python function about travel."));
        assert!(file.weights.keys().all(|name| !name.contains("travel")), "unseen words get no weight");
    }

    #[test]
    fn training_is_deterministic() {
        let first =
            serde_json::to_string(&train(&toy(), Settings::default(), Vec::new())).unwrap_or_default();
        let second =
            serde_json::to_string(&train(&toy(), Settings::default(), Vec::new())).unwrap_or_default();
        assert!(!first.is_empty());
        assert_eq!(first, second);
    }

    #[test]
    fn features_seen_once_get_no_weight() {
        let file = train(&toy(), Settings { min_count: 2, ..Settings::default() }, Vec::new());
        assert!(!file.weights.keys().any(|name| name == "b:improve_sleep"), "'improve sleep' occurs once");
    }
}
