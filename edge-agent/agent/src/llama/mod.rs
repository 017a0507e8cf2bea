//! The `llama` backend: a GGUF model run in-process by llama.cpp (through `llama-cpp-2`), so an
//! edge agent needs no model server beside it.
//!
//! The model (weights, vocabulary, chat template) is loaded once. One engine thread owns one
//! llama.cpp context with `slots` sequences over a unified KV cache of `context_tokens` cells,
//! reserved at load; every generation is a sequence in it, and each engine step decodes the next
//! token of every generating sequence as one batch, with the prompts of newcomers, which join at
//! the next step (continuous batching, see [`engine`]). The points of one answer share their
//! prompt up to the point to expand ([`pice_wire::prompt`]): that prefix is decoded once and its
//! cells shared by the other points' sequences ([`prefix`]), unless `share_prefix` is off.
//!
//! The agent's admission caps generations at `--slots`, the context's sequence count; a
//! generation beyond waits in the engine for a sequence. Generation stops between two steps once
//! the stream is dropped, and the sequence is cleared for the next.

mod engine;
mod generation;
mod prefix;
mod text;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use llama_cpp_2::llama_backend::LlamaBackend as Runtime;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use prometheus::{IntCounter, Registry};
use tokio::sync::mpsc;
use tracing::info;

use engine::EngineShape;
use generation::{Alive, Job};
use pice_wire::generation::{
    BackendError, ExpansionRequest, GenerationEvent, GenerationStream, ModelBackend,
};
use pice_wire::prompt;

/// Events a generation may produce before its reader takes them; beyond, it skips engine steps.
const EVENT_BUFFER: usize = 16;

/// How to load the model and shape its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlamaSettings {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The name reported in `Load` and metrics; the file name without `.gguf` when `None`.
    pub model_name: Option<String>,
    /// CPU threads of the engine; all cores when `None`.
    pub threads: Option<u32>,
    /// Sequences generated together (the agent's `--slots`).
    pub slots: u32,
    /// KV cache cells shared by all sequences, reserved at load; one generation's prompt and
    /// budget must fit in them.
    pub context_tokens: u32,
    /// Decode a prompt prefix that a sequence already holds only once.
    pub share_prefix: bool,
}

/// What the backend has done so far, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LlamaStats {
    /// Generations accepted and not ended: waiting for a sequence or generating.
    pub generating: usize,
    /// Tokens generated since the model was loaded.
    pub tokens_total: u64,
    /// Generations that ended because their stream was dropped.
    pub cancelled_total: u64,
    /// Generations that ran to a stop or their budget.
    pub completed_total: u64,
    /// Prompt tokens copied from another sequence's cache instead of decoded.
    pub prefix_reused_tokens_total: u64,
}

/// A [`ModelBackend`] running a GGUF model in this process.
#[derive(Clone)]
pub struct LlamaBackend {
    model: Arc<Model>,
    jobs: Sender<Job>,
    counters: Arc<Counters>,
    /// The most a generation's prompt and budget may hold.
    sequence_tokens: u32,
    name: String,
}

impl LlamaBackend {
    /// Loads the model and its chat template and starts the engine; blocks for as long as
    /// llama.cpp reads the file.
    pub fn load(settings: &LlamaSettings) -> Result<Self, BackendError> {
        let started = Instant::now();
        let model = Arc::new(Model::load(&settings.model_path)?);
        let name = settings.model_name.clone().unwrap_or_else(|| file_stem(&settings.model_path));
        let counters = Arc::new(Counters::new(&name)?);
        let threads = settings.threads.map_or_else(all_cores, |t| t.max(1));
        let shape = EngineShape {
            threads: i32::try_from(threads).unwrap_or(i32::MAX),
            slots: settings.slots,
            context_tokens: settings.context_tokens,
            share_prefix: settings.share_prefix,
        };
        let jobs = engine::start(Arc::clone(&model.llama), model.runtime, shape, Arc::clone(&counters))?;
        info!(
            model = %name,
            path = %settings.model_path.display(),
            parameters = model.llama.n_params(),
            threads,
            slots = settings.slots,
            context_tokens = settings.context_tokens,
            share_prefix = settings.share_prefix,
            load_ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        let sequence_tokens = settings.context_tokens.min(model.llama.n_ctx_train());
        Ok(Self { model, jobs, counters, sequence_tokens, name })
    }

    pub fn stats(&self) -> LlamaStats {
        self.counters.snapshot()
    }

    /// Registers `pice_edge_prefix_reused_tokens_total` in `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.counters.prefix_reused.clone()))
    }

    fn start(&self, request: &ExpansionRequest) -> Result<GenerationStream, BackendError> {
        let prompt = self.model.prompt(request)?;
        let prompt_tokens = u32::try_from(prompt.len()).unwrap_or(u32::MAX);
        let room = self.sequence_tokens.saturating_sub(prompt_tokens);
        if prompt.is_empty() || room == 0 {
            return Err(BackendError::Model(format!(
                "the prompt has {prompt_tokens} tokens; a sequence holds {}",
                self.sequence_tokens
            )));
        }
        let (events, mut receiver) = mpsc::channel(EVENT_BUFFER);
        let job = Job {
            prompt,
            prefix_id: request.prefix_id.clone(),
            budget: request.max_tokens.min(room),
            want_logprobs: request.want_logprobs,
            seed: request.seed,
            sampling: request.sampling.clone(),
            events,
            _alive: Alive::enter(&self.counters),
        };
        if job.budget == 0 {
            self.counters.completed.fetch_add(1, Ordering::SeqCst);
            let finished = Ok(GenerationEvent::Finished(job.usage_without_budget()));
            // The channel is new and empty: there is room.
            let _sent = job.events.try_send(finished);
        } else {
            self.jobs
                .send(job)
                .map_err(|_| BackendError::Model("the llama engine thread has stopped".to_owned()))?;
        }
        Ok(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
    }
}

impl ModelBackend for LlamaBackend {
    fn model(&self) -> &str {
        &self.name
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

/// The loaded model and its chat template.
struct Model {
    runtime: &'static Runtime,
    llama: Arc<LlamaModel>,
    template: LlamaChatTemplate,
}

impl Model {
    fn load(path: &Path) -> Result<Self, BackendError> {
        // llama-cpp-2 asserts that the file exists; say which file is missing instead.
        if !path.is_file() {
            return Err(BackendError::Config(format!("model file {} does not exist", path.display())));
        }
        let runtime = runtime()?;
        let llama = LlamaModel::load_from_file(runtime, path, &LlamaModelParams::default()).map_err(|e| {
            BackendError::Model(format!("cannot load {} as a GGUF model: {e}", path.display()))
        })?;
        let template = llama.chat_template(None).map_err(|e| {
            BackendError::Model(format!("{} has no usable chat template: {e}", path.display()))
        })?;
        check_template(&llama, &template, path)?;
        Ok(Self { runtime, llama: Arc::new(llama), template })
    }

    /// The expansion messages from [`prompt`] in the model's chat format, as tokens.
    fn prompt(&self, request: &ExpansionRequest) -> Result<Vec<LlamaToken>, BackendError> {
        let messages = prompt::expansion_messages(request)
            .into_iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.text().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Model(format!("the prompt cannot be passed to llama.cpp: {e}")))?;
        let text = self
            .llama
            .apply_chat_template(&self.template, &messages, true)
            .map_err(|e| BackendError::Model(format!("cannot apply the model's chat template: {e}")))?;
        Ok(self.llama.vocab().tokenize(text.as_bytes(), true, true))
    }
}

#[derive(Debug)]
struct Counters {
    generating: AtomicUsize,
    tokens: AtomicU64,
    cancelled: AtomicU64,
    completed: AtomicU64,
    prefix_reused: IntCounter,
}

impl Counters {
    fn new(model: &str) -> Result<Self, BackendError> {
        let prefix_reused = crate::metrics::prefix_reused_tokens(model)
            .map_err(|e| BackendError::Config(format!("the prefix reuse counter: {e}")))?;
        Ok(Self {
            generating: AtomicUsize::new(0),
            tokens: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            prefix_reused,
        })
    }

    fn snapshot(&self) -> LlamaStats {
        LlamaStats {
            generating: self.generating.load(Ordering::SeqCst),
            tokens_total: self.tokens.load(Ordering::SeqCst),
            cancelled_total: self.cancelled.load(Ordering::SeqCst),
            completed_total: self.completed.load(Ordering::SeqCst),
            prefix_reused_tokens_total: self.prefix_reused.get(),
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
