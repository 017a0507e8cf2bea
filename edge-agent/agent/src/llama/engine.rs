//! The engine thread: one llama.cpp context for every generation, decoded as one batch per step
//! (continuous batching).
//!
//! The context has `slots` sequences over one unified KV cache of `context_tokens` cells. Each
//! step builds one batch: the next token of every generating sequence, then prompt tokens of
//! newly started sequences up to [`PREFILL_CHUNK`] in all; decodes it once; and samples each
//! sequence from its own row of logits ([`Generation`]). A job that arrives joins the next step
//! while the others keep generating; when it shares a prompt prefix with a sequence in the cache
//! ([`Sequences`]), that prefix is copied, not decoded again.
//!
//! Text goes into each job's bounded channel with `try_send`, so a slow reader never stalls the
//! other sequences: its events wait in its outbox and it skips steps until they are taken. A job
//! whose stream was dropped is cancelled between two steps and its sequence cleared. When the
//! cache runs out of cells, finished sequences kept as prefix donors are cleared first, then the
//! youngest generation fails with an error naming `--llama-context-tokens`.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use llama_cpp_2::DecodeError;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend as Runtime;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use tokio::sync::mpsc::error::TrySendError;

use super::Counters;
use super::generation::{Generation, Job, Step};
use super::prefix::{Placement, SeqId, Sequences};
use pice_wire::generation::{BackendError, GenerationEvent};

/// Prompt tokens decoded per step, over all starting sequences: bounds how long the generating
/// sequences wait for a newcomer's prefill.
const PREFILL_CHUNK: usize = 256;
/// How long to wait for a new job when every generation waits for its reader.
const STALLED_POLL: Duration = Duration::from_millis(2);
/// llama.cpp's limit on sequences in one context (`LLAMA_MAX_SEQ`).
const MAX_SLOTS: u32 = 256;

/// The shape of the engine's context.
#[derive(Clone, Copy, Debug)]
pub(super) struct EngineShape {
    pub threads: i32,
    pub slots: u32,
    pub context_tokens: u32,
    pub share_prefix: bool,
}

/// Creates the context on a new thread and runs the engine there until every sender of jobs is
/// dropped and the last generation has ended.
pub(super) fn start(
    model: Arc<LlamaModel>,
    runtime: &'static Runtime,
    shape: EngineShape,
    counters: Arc<Counters>,
) -> Result<Sender<Job>, BackendError> {
    if !(1..=MAX_SLOTS).contains(&shape.slots) {
        return Err(BackendError::Config(format!(
            "llama.cpp runs 1 to {MAX_SLOTS} sequences, not {}",
            shape.slots
        )));
    }
    let (jobs, received) = std::sync::mpsc::channel();
    let (ready, started) = std::sync::mpsc::sync_channel(1);
    let run = move || {
        let context = match context(&model, runtime, shape) {
            Ok(context) => context,
            Err(error) => {
                let _told = ready.send(Err(error));
                return;
            }
        };
        let _told = ready.send(Ok(()));
        Engine::new(context, &model, shape, counters).run(&received);
    };
    std::thread::Builder::new()
        .name("llama-engine".to_owned())
        .spawn(run)
        .map_err(|e| BackendError::Model(format!("cannot start the llama engine thread: {e}")))?;
    started
        .recv()
        .map_err(|_| BackendError::Model("the llama engine thread ended while starting".to_owned()))??;
    Ok(jobs)
}

fn context<'m>(
    model: &'m LlamaModel,
    runtime: &Runtime,
    shape: EngineShape,
) -> Result<LlamaContext<'m>, BackendError> {
    let batch = u32::try_from(PREFILL_CHUNK).unwrap_or(u32::MAX) + shape.slots;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(shape.context_tokens))
        .with_n_batch(batch)
        .with_n_seq_max(shape.slots)
        // One cache for all sequences: a copied prefix is shared by its cells, not duplicated.
        .with_kv_unified(true)
        .with_n_threads(shape.threads)
        .with_n_threads_batch(shape.threads);
    model
        .new_context(runtime, params)
        .map_err(|e| BackendError::Model(format!("cannot create a llama.cpp context: {e}")))
}

/// A generation holding a sequence, or finished with events still to hand over.
struct Running {
    job: Job,
    generation: Generation,
    /// `None` once finished: the sequence was given back.
    seq: Option<SeqId>,
    outbox: VecDeque<Result<GenerationEvent, BackendError>>,
    /// Orders generations by start, to fail the youngest when the cache is full.
    started: u64,
}

/// What handing a generation's events over found.
enum Handover {
    /// All sent; the reader is still there.
    Done,
    /// The channel is full.
    Blocked,
    /// The reader dropped the stream.
    Gone,
}

impl Running {
    fn hand_over(&mut self) -> Handover {
        while let Some(event) = self.outbox.pop_front() {
            match self.job.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.outbox.push_front(event);
                    return Handover::Blocked;
                }
                Err(TrySendError::Closed(_)) => return Handover::Gone,
            }
        }
        if self.job.events.is_closed() { Handover::Gone } else { Handover::Done }
    }

    fn send(&mut self, text: String) {
        if !text.is_empty() {
            self.outbox.push_back(Ok(GenerationEvent::Text(text)));
        }
    }

    /// Whether it takes part in the next batch.
    fn ready(&self) -> Option<SeqId> {
        self.seq.filter(|_| self.outbox.is_empty())
    }
}

/// One generation's share of a batch.
struct Planned {
    running: usize,
    seq: SeqId,
    tokens: usize,
    /// The batch row whose logits to sample from, when the batch holds its last pending token.
    row: Option<i32>,
}

struct Engine<'m> {
    context: LlamaContext<'m>,
    model: &'m LlamaModel,
    batch: LlamaBatch<'static>,
    sequences: Sequences,
    waiting: VecDeque<Job>,
    running: Vec<Running>,
    started: u64,
    /// The last step decoded nothing although generations are running.
    stalled: bool,
    counters: Arc<Counters>,
}

impl<'m> Engine<'m> {
    fn new(
        context: LlamaContext<'m>,
        model: &'m LlamaModel,
        shape: EngineShape,
        counters: Arc<Counters>,
    ) -> Self {
        let slots = usize::try_from(shape.slots).unwrap_or(usize::MAX);
        Self {
            context,
            model,
            batch: LlamaBatch::new(PREFILL_CHUNK + slots, 1),
            sequences: Sequences::new(slots, shape.share_prefix),
            waiting: VecDeque::new(),
            running: Vec::new(),
            started: 0,
            stalled: false,
            counters,
        }
    }

    fn run(mut self, jobs: &Receiver<Job>) {
        while self.receive(jobs) {
            self.hand_over();
            self.admit();
            self.stalled = !self.step();
            self.hand_over();
        }
    }

    /// Takes the jobs that arrived; waits for one when there is nothing else to do. False once
    /// no job can come any more and none is left.
    fn receive(&mut self, jobs: &Receiver<Job>) -> bool {
        if self.running.is_empty() && self.waiting.is_empty() {
            match jobs.recv() {
                Ok(job) => self.waiting.push_back(job),
                Err(_) => return false,
            }
        } else if self.stalled {
            match jobs.recv_timeout(STALLED_POLL) {
                Ok(job) => self.waiting.push_back(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        }
        self.waiting.extend(jobs.try_iter());
        true
    }

    /// Sends what each generation has ready; drops generations that are over or whose reader
    /// has gone (cancelling them when they were not over).
    fn hand_over(&mut self) {
        let mut index = 0;
        while index < self.running.len() {
            let running = &mut self.running[index];
            match (running.hand_over(), running.seq) {
                (Handover::Done, None) | (Handover::Gone, None) => {}
                (Handover::Gone, Some(seq)) => {
                    self.counters.cancelled.fetch_add(1, Ordering::SeqCst);
                    self.clear(seq);
                }
                (Handover::Done | Handover::Blocked, _) => {
                    index += 1;
                    continue;
                }
            }
            self.running.swap_remove(index);
        }
    }

    /// Starts waiting jobs in free sequences, after the longest prefix already in the cache.
    fn admit(&mut self) {
        let mut index = 0;
        while let Some(job) = self.waiting.get(index) {
            if job.events.is_closed() {
                self.counters.cancelled.fetch_add(1, Ordering::SeqCst);
                self.waiting.remove(index);
                continue;
            }
            match self.sequences.place(&job.prompt, &job.prefix_id) {
                Placement::Full => return,
                Placement::WaitForDonor => index += 1,
                Placement::Start { seq, evict, donor } => {
                    if let Some(evicted) = evict {
                        self.clear(evicted);
                    }
                    let shared = donor.map_or(0, |(donor, shared)| self.share(donor, seq, shared));
                    if let Some(job) = self.waiting.remove(index) {
                        self.sequences.start(seq, &job.prompt, &job.prefix_id, shared);
                        self.counters.prefix_reused.inc_by(u64::try_from(shared).unwrap_or(u64::MAX));
                        self.started += 1;
                        let generation = Generation::new(&job, self.model.n_vocab());
                        let started = self.started;
                        self.running.push(Running {
                            job,
                            generation,
                            seq: Some(seq),
                            outbox: VecDeque::new(),
                            started,
                        });
                    }
                }
            }
        }
    }

    /// Puts the first `shared` tokens of `donor` into `seq` (keeps only them when `seq` is the
    /// donor itself); returns how many are there now.
    fn share(&mut self, donor: SeqId, seq: SeqId, shared: usize) -> usize {
        let end = u32::try_from(shared).ok();
        let seq_index = u32::try_from(seq).ok();
        let done = if donor == seq {
            self.context.clear_kv_cache_seq(seq_index, end, None).is_ok_and(|removed| removed)
        } else {
            self.context.copy_kv_cache_seq(donor, seq, Some(0), end).is_ok()
        };
        if done {
            return shared;
        }
        // Start from scratch rather than trust a half-done copy.
        self.clear_cells(seq);
        0
    }

    /// Decodes one batch and samples from it; false when there was nothing to decode.
    fn step(&mut self) -> bool {
        loop {
            let planned = match self.plan() {
                Ok(planned) if planned.is_empty() => return false,
                Ok(planned) => planned,
                Err(error) => {
                    self.fail_all(&error);
                    return false;
                }
            };
            match self.context.decode(&mut self.batch) {
                Ok(()) => {
                    self.sample(&planned);
                    return true;
                }
                Err(DecodeError::NoKvCacheSlot) => self.make_room(),
                Err(error) => {
                    let error = error.to_string();
                    for entry in &planned {
                        self.fail(entry.running, &error);
                    }
                    return false;
                }
            }
        }
    }

    /// Fills the batch: one token of each generating sequence, then prompt tokens up to
    /// [`PREFILL_CHUNK`].
    fn plan(&mut self) -> Result<Vec<Planned>, String> {
        self.batch.clear();
        let mut planned = Vec::new();
        let mut prefill = PREFILL_CHUNK;
        for generating in [true, false] {
            for (index, running) in self.running.iter().enumerate() {
                let Some(seq) = running.ready() else { continue };
                let (pending, position) = self.sequences.pending(seq);
                if pending.is_empty() || (pending.len() == 1) != generating {
                    continue;
                }
                let tokens = if generating { 1 } else { pending.len().min(prefill) };
                if tokens == 0 {
                    break;
                }
                prefill -= if generating { 0 } else { tokens };
                let last = tokens == pending.len();
                for (offset, &token) in pending[..tokens].iter().enumerate() {
                    let position = i32::try_from(position + offset).map_err(|e| e.to_string())?;
                    let logits = last && offset + 1 == tokens;
                    self.batch.add(token, position, &[seq], logits).map_err(|e| e.to_string())?;
                }
                let row = last.then(|| self.batch.n_tokens() - 1);
                planned.push(Planned { running: index, seq, tokens, row });
            }
        }
        Ok(planned)
    }

    /// Records the decoded tokens and samples the next token of every sequence that has one.
    fn sample(&mut self, planned: &[Planned]) {
        for entry in planned {
            self.sequences.decoded(entry.seq, entry.tokens);
            let Some(row) = entry.row else { continue };
            let running = &mut self.running[entry.running];
            match running.generation.sample(&self.context, row, self.model, &self.counters) {
                Step::Continue { text, token } => {
                    running.send(text);
                    self.sequences.push(entry.seq, token);
                }
                Step::Finished { text, usage } => {
                    running.send(text);
                    running.outbox.push_back(Ok(GenerationEvent::Finished(usage)));
                    running.seq = None;
                    self.counters.completed.fetch_add(1, Ordering::SeqCst);
                    if self.sequences.finish(entry.seq) {
                        self.clear_cells(entry.seq);
                    }
                }
            }
        }
    }

    /// The cache has no cells for the batch: clear the oldest prefix donor, or else fail the
    /// youngest generation.
    fn make_room(&mut self) {
        if let Some(resident) = self.sequences.oldest_resident() {
            self.clear(resident);
            return;
        }
        let youngest =
            self.running.iter().enumerate().filter(|(_, r)| r.seq.is_some()).max_by_key(|(_, r)| r.started);
        if let Some((index, _)) = youngest {
            self.fail(index, "the KV cache is full (raise --llama-context-tokens)");
        }
    }

    fn fail_all(&mut self, error: &str) {
        for index in 0..self.running.len() {
            self.fail(index, error);
        }
    }

    /// Ends a generation with an error and clears its sequence.
    fn fail(&mut self, index: usize, error: &str) {
        let running = &mut self.running[index];
        let Some(seq) = running.seq.take() else { return };
        running.outbox.push_back(Err(BackendError::Model(format!("llama.cpp failed to generate: {error}"))));
        self.clear(seq);
    }

    /// Frees `seq` and its cells.
    fn clear(&mut self, seq: SeqId) {
        self.sequences.free(seq);
        self.clear_cells(seq);
    }

    fn clear_cells(&mut self, seq: SeqId) {
        // Removing a whole sequence cannot fail; only a sequence id beyond u32 could.
        let _removed = self.context.clear_kv_cache_seq(u32::try_from(seq).ok(), None, None);
    }
}
