//! The router's model: a logistic regression over [`features`](super::features), its file
//! format (versioned JSON, weights sorted so a retrained file diffs cleanly) and scoring.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::features;

/// The `format` a model file must name.
pub const FORMAT: &str = "pice-router/v1";

/// What a model file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The labelled files it was trained on and how many questions each gave.
    pub trained_on: Vec<TrainingSet>,
    /// The L2 regularisation it was trained with.
    pub regularization: f64,
    /// Probability of "suitable" from which a question goes progressive.
    pub threshold: f64,
    pub bias: f64,
    /// Weight per feature; features absent here weigh nothing.
    pub weights: BTreeMap<String, f64>,
}

/// One training file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingSet {
    pub file: String,
    pub questions: usize,
    pub suitable: usize,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read the router model {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the router model {path} is not a {FORMAT} file: {reason}")]
    Invalid { path: String, reason: String },
}

/// A loaded model, ready to score questions.
#[derive(Clone, Debug)]
pub struct Router {
    bias: f32,
    threshold: f32,
    weights: HashMap<String, f32>,
}

impl Router {
    /// The model committed with this release (`operator/gateway/router/router-v1.json`).
    pub fn builtin() -> &'static Router {
        static BUILTIN: std::sync::LazyLock<Router> = std::sync::LazyLock::new(|| {
            let text = include_str!("../../router/router-v1.json");
            Router::parse(text, "the built-in model").unwrap_or_else(|error| panic!("{error}"))
        });
        &BUILTIN
    }

    /// Loads a model file written by `pice-gateway router train`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModelError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    fn parse(text: &str, path: &str) -> Result<Self, ModelError> {
        let invalid = |reason: String| ModelError::Invalid { path: path.to_owned(), reason };
        let file: ModelFile = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT {
            return Err(invalid(format!("its format is {:?}", file.format)));
        }
        if !(0.0..=1.0).contains(&file.threshold) || file.weights.values().any(|w| !w.is_finite()) {
            return Err(invalid("its threshold must lie in [0, 1] and its weights be finite".into()));
        }
        Ok(Self::from(&file))
    }

    /// The probability that `question` is suitable for sketch-and-expand.
    pub fn probability(&self, question: &str) -> f64 {
        let score: f32 = features::extract(question)
            .iter()
            .filter_map(|(feature, value)| self.weights.get(feature).map(|weight| weight * value))
            .sum::<f32>()
            + self.bias;
        1.0 / (1.0 + f64::from(-score).exp())
    }

    /// Whether `question` goes progressive (in `auto`).
    pub fn suitable(&self, question: &str) -> bool {
        self.probability(question) >= f64::from(self.threshold)
    }
}

impl From<&ModelFile> for Router {
    fn from(file: &ModelFile) -> Self {
        Self {
            bias: file.bias as f32,
            threshold: file.threshold as f32,
            weights: file.weights.iter().map(|(feature, weight)| (feature.clone(), *weight as f32)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(weights: &[(&str, f64)]) -> ModelFile {
        ModelFile {
            format: FORMAT.into(),
            trained_on: Vec::new(),
            regularization: 0.001,
            threshold: 0.5,
            bias: -0.5,
            weights: weights.iter().map(|(f, w)| ((*f).to_owned(), *w)).collect(),
        }
    }

    #[test]
    fn a_question_scores_by_its_features_weights() {
        let router = Router::from(&file(&[("o:what_are", 8.0), ("w:code", -8.0)]));
        assert!(router.suitable("What are good ways to rest?"));
        assert!(!router.suitable("Write code to sort a list"));
        assert!((router.probability("") - 1.0 / (1.0 + 0.5f64.exp())).abs() < 1e-6, "the bias alone");
    }

    #[test]
    fn a_file_of_another_format_or_with_nonsense_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(&path, serde_json::to_string(&ModelFile { format: "x".into(), ..file(&[]) }).unwrap())
            .unwrap();
        let error = Router::load(&path).unwrap_err().to_string();
        assert!(error.contains("model.json") && error.contains("\"x\""), "{error}");
        std::fs::write(&path, serde_json::to_string(&ModelFile { threshold: 2.0, ..file(&[]) }).unwrap())
            .unwrap();
        assert!(Router::load(&path).is_err());
        assert!(
            Router::load(&dir.path().join("absent.json")).unwrap_err().to_string().contains("cannot read")
        );
    }

    #[test]
    fn the_builtin_model_loads() {
        let router = Router::builtin();
        assert!(!router.weights.is_empty());
    }
}
