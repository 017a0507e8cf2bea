//! The `llama` backend: a GGUF model run in-process by llama.cpp (through `llama-cpp-2`), so an
//! edge agent needs no model server beside it.
//!
//! Concurrency: the model (weights, vocabulary, chat template) is loaded once and shared; each
//! generation runs on its own blocking thread with its own llama.cpp context (KV cache) sized to
//! its prompt and budget, dropped when it ends. That is the simple correct option here: the
//! agent's admission already caps generations at `--slots`, so no second pool or queue is needed;
//! a context never carries one request's KV cache into the next; and an idle agent holds only the
//! weights. Creating a context costs a few milliseconds, and is serialised by a mutex because
//! llama.cpp writes to the model while it does (see `LlamaModel::new_context`). A single shared
//! context behind a mutex would also be correct, but would run one generation at a time whatever
//! `--slots` says while the agent reports them all as running.
//!
//! Generation stops between two tokens once the stream is dropped: the thread sends each piece
//! into a bounded channel and ends when the receiving side is gone (see [`generation`]).

mod generation;
mod text;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend as Runtime;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use tokio::sync::mpsc;
use tracing::info;

use generation::Job;
use pice_wire::generation::{BackendError, ExpansionRequest, GenerationStream, ModelBackend};
use pice_wire::prompt;

/// Events a generation may produce before its reader takes them; beyond, the thread waits.
const EVENT_BUFFER: usize = 16;

/// How to load the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlamaSettings {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The name reported in `Load` and metrics; the file name without `.gguf` when `None`.
    pub model_name: Option<String>,
    /// CPU threads of each generation; all cores when `None`.
    pub threads: Option<u32>,
}

/// What the backend has done so far, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LlamaStats {
    /// Generation threads alive now.
    pub generating: usize,
    /// Tokens generated since the model was loaded.
    pub tokens_total: u64,
    /// Generations that ended because their stream was dropped.
    pub cancelled_total: u64,
    /// Generations that ran to a stop or their budget.
    pub completed_total: u64,
}

/// A [`ModelBackend`] running a GGUF model in this process.
#[derive(Clone)]
pub struct LlamaBackend {
    engine: Arc<Engine>,
    model: String,
}

impl LlamaBackend {
    /// Loads the model and its chat template; blocks for as long as llama.cpp reads the file.
    pub fn load(settings: &LlamaSettings) -> Result<Self, BackendError> {
        let started = Instant::now();
        let engine = Engine::load(settings)?;
        let model = settings.model_name.clone().unwrap_or_else(|| file_stem(&settings.model_path));
        info!(
            %model,
            path = %settings.model_path.display(),
            parameters = engine.model.n_params(),
            threads = engine.threads,
            load_ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        Ok(Self { engine: Arc::new(engine), model })
    }

    pub fn stats(&self) -> LlamaStats {
        self.engine.counters.snapshot()
    }

    fn start(&self, request: &ExpansionRequest) -> Result<GenerationStream, BackendError> {
        let prompt = self.engine.prompt(request)?;
        let (events, mut receiver) = mpsc::channel(EVENT_BUFFER);
        let job = Job {
            prompt,
            max_tokens: request.max_tokens,
            want_logprobs: request.want_logprobs,
            seed: request.seed,
            sampling: request.sampling.clone(),
            events,
        };
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || generation::run(&engine, job));
        Ok(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
    }
}

impl ModelBackend for LlamaBackend {
    fn model(&self) -> &str {
        &self.model
    }

    fn generate(&self, request: ExpansionRequest) -> BoxFuture<'_, Result<GenerationStream, BackendError>> {
        let started = self.start(&request);
        async move { started }.boxed()
    }

    /// The model is in memory from [`LlamaBackend::load`] on.
    fn ready(&self) -> BoxFuture<'_, bool> {
        async { true }.boxed()
    }
}

/// The loaded model and what every generation shares.
struct Engine {
    runtime: &'static Runtime,
    model: LlamaModel,
    template: LlamaChatTemplate,
    threads: i32,
    /// Held while a context is created (llama.cpp mutates the model then).
    creating_context: Mutex<()>,
    counters: Counters,
}

impl Engine {
    fn load(settings: &LlamaSettings) -> Result<Self, BackendError> {
        let path = &settings.model_path;
        // llama-cpp-2 asserts that the file exists; say which file is missing instead.
        if !path.is_file() {
            return Err(BackendError::Config(format!("model file {} does not exist", path.display())));
        }
        let runtime = runtime()?;
        let model = LlamaModel::load_from_file(runtime, path, &LlamaModelParams::default()).map_err(|e| {
            BackendError::Model(format!("cannot load {} as a GGUF model: {e}", path.display()))
        })?;
        let template = model.chat_template(None).map_err(|e| {
            BackendError::Model(format!("{} has no usable chat template: {e}", path.display()))
        })?;
        check_template(&model, &template, path)?;
        let threads = settings.threads.map_or_else(all_cores, |t| t.max(1));
        Ok(Self {
            runtime,
            model,
            template,
            threads: i32::try_from(threads).unwrap_or(i32::MAX),
            creating_context: Mutex::new(()),
            counters: Counters::default(),
        })
    }

    /// The expansion messages from [`prompt`] in the model's chat format, as tokens.
    fn prompt(&self, request: &ExpansionRequest) -> Result<Vec<LlamaToken>, BackendError> {
        let messages = prompt::expansion_messages(request)
            .into_iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.text().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Model(format!("the prompt cannot be passed to llama.cpp: {e}")))?;
        let text = self
            .model
            .apply_chat_template(&self.template, &messages, true)
            .map_err(|e| BackendError::Model(format!("cannot apply the model's chat template: {e}")))?;
        Ok(self.model.vocab().tokenize(text.as_bytes(), true, true))
    }

    /// A fresh context holding `tokens` positions, decoding up to that many tokens per batch.
    fn context(&self, tokens: u32) -> Result<LlamaContext<'_>, BackendError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(tokens))
            .with_n_batch(tokens)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let _creating = self.creating_context.lock().unwrap_or_else(PoisonError::into_inner);
        self.model
            .new_context(self.runtime, params)
            .map_err(|e| BackendError::Model(format!("cannot create a llama.cpp context: {e}")))
    }
}

#[derive(Debug, Default)]
struct Counters {
    generating: AtomicUsize,
    tokens: AtomicU64,
    cancelled: AtomicU64,
    completed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LlamaStats {
        LlamaStats {
            generating: self.generating.load(Ordering::SeqCst),
            tokens_total: self.tokens.load(Ordering::SeqCst),
            cancelled_total: self.cancelled.load(Ordering::SeqCst),
            completed_total: self.completed.load(Ordering::SeqCst),
        }
    }
}

/// llama.cpp's process-wide state: initialised once, on the first model load, with its log
/// lines sent to `tracing` (target `llama_cpp_2`) rather than to stderr.
fn runtime() -> Result<&'static Runtime, BackendError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        send_logs_to_tracing(LogOptions::default());
        Runtime::init().map_err(|e| e.to_string())
    });
    runtime.as_ref().map_err(|e| BackendError::Model(format!("cannot initialise llama.cpp: {e}")))
}

/// llama.cpp renders the chat templates it recognises (ChatML, Llama, Gemma, Mistral and the
/// like), not arbitrary Jinja: find out at load time rather than on the first request.
fn check_template(model: &LlamaModel, template: &LlamaChatTemplate, path: &Path) -> Result<(), BackendError> {
    let cannot = |e: String| {
        BackendError::Model(format!("llama.cpp cannot render the chat template of {}: {e}", path.display()))
    };
    let probe =
        LlamaChatMessage::new("user".to_owned(), "Hello".to_owned()).map_err(|e| cannot(e.to_string()))?;
    model.apply_chat_template(template, &[probe], true).map(drop).map_err(|e| cannot(e.to_string()))
}

fn all_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

fn file_stem(path: &Path) -> String {
    let name =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".gguf").map(str::to_owned).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_named_after_its_file() {
        let name = file_stem(Path::new("/cache/SmolLM2-135M-Instruct.Q4_1.gguf"));
        assert_eq!(name, "SmolLM2-135M-Instruct.Q4_1");
        assert_eq!(file_stem(Path::new("model.bin")), "model.bin");
    }
}
