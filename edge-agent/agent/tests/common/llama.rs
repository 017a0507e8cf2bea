//! What the tests of the `llama` backend share: the model's path and a generation read to its
//! end, with when its first piece and its end arrived.

use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use pice_edge_agent::llama::LlamaBackend;
use pice_wire::generation::{ExpansionRequest, GenerationEvent, ModelBackend, Usage};

/// SmolLM2-135M-Instruct, which `make llama` fetches and passes in `PICE_MODEL_PATH`.
pub fn model_path() -> PathBuf {
    std::env::var_os("PICE_MODEL_PATH").map(PathBuf::from).expect(
        "PICE_MODEL_PATH is not set: run `make llama`, which fetches SmolLM2-135M-Instruct \
         and runs these tests with it",
    )
}

/// A finished generation: its text pieces and usage, how many tokens the model had made when
/// the first piece arrived here, and when the first piece and the end arrived.
pub struct Generated {
    pub pieces: Vec<String>,
    pub usage: Usage,
    pub tokens_at_first_piece: u64,
    pub first_piece: Instant,
    pub finished: Instant,
}

impl Generated {
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

/// Runs `request` on `backend` to its end; `Finished` must come once, last, after some text.
pub async fn generate(backend: &LlamaBackend, request: ExpansionRequest) -> Generated {
    let mut stream = backend.generate(request).await.unwrap();
    let mut pieces = Vec::new();
    let mut first = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            GenerationEvent::Text(text) => {
                first.get_or_insert_with(|| (backend.stats().tokens_total, Instant::now()));
                pieces.push(text);
            }
            GenerationEvent::Finished(usage) => {
                assert!(stream.next().await.is_none(), "Finished is the last event");
                let (tokens_at_first_piece, first_piece) = first.expect("no text before Finished");
                return Generated {
                    pieces,
                    usage,
                    tokens_at_first_piece,
                    first_piece,
                    finished: Instant::now(),
                };
            }
        }
    }
    panic!("the stream ended without Finished");
}
