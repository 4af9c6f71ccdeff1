//! Continuous batching: one llama.cpp context holds up to `max_sequences`
//! jobs, each in its own KV-cache sequence. Every step decodes one token for
//! each generating job plus a chunk of any waiting prompt; jobs join between
//! steps and leave as soon as they finish. A job's tokens depend only on its
//! own logits and (seed, position), never on what else is in the batch.
//! Held sequence ids are kept contiguous (see [`crate::seqs`]).
//!
//! Prompt caching: a finished job's sequence keeps its KV cache, and a new
//! job takes the free sequence whose cached tokens share the longest prefix
//! with its prompt, computing only the rest (see [`crate::prefix`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

use agora_grammar::Guide;
use agora_toploc::CommitmentBuilder;
use agora_types::{FinishReason, SamplingParams};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::llama::token_piece;
use crate::logits::{logprobs, penalised};
use crate::pool::Held;
use crate::prefix::PrefixCache;
use crate::sampling::sample;
use crate::seqs::{next_move, FreeSeqs, Move};
use crate::text::{Piece, TextStream};
use crate::{EngineEvent, LlamaEngineConfig};

/// A job waiting for the worker.
pub(crate) struct Job {
    /// Prompt tokens, already rendered and checked against the context window.
    pub prompt: Vec<LlamaToken>,
    /// Sampling parameters.
    pub params: SamplingParams,
    /// Masks what the job's output constraint forbids (`None`: unconstrained).
    pub guide: Option<Guide>,
    /// Where events go; closed when the client gave up.
    pub events: mpsc::Sender<EngineEvent>,
}

/// A job that holds a KV-cache sequence.
struct Slot {
    seq: i32,
    job: Job,
    /// Prompt tokens already decoded.
    prefilled: usize,
    /// Next position to write in this sequence.
    pos: usize,
    /// Token sampled last, to be decoded next step.
    pending: Option<LlamaToken>,
    /// Index of this slot's logits in the current batch, if it asked for any.
    logits_at: Option<i32>,
    output: Vec<i32>,
    /// Times each token was generated, for presence/frequency penalties.
    counts: HashMap<i32, u32>,
    /// The text streamed so far, token by token ([`crate::text`]).
    text: TextStream,
    /// Finished, failed or cancelled: the slot leaves after this step.
    done: bool,
    /// Activation commitments under construction (when the engine computes them).
    commit: Option<CommitmentBuilder>,
    /// Batch indices and positions of this step's prompt tokens the prompt commitment covers.
    prompt_rows: Vec<(i32, usize)>,
}

impl Slot {
    /// A slot whose sequence already holds the first `cached` prompt tokens.
    fn new(seq: i32, job: Job, cached: usize, commitments: bool) -> Self {
        let text = TextStream::new(&job.params.stop);
        Slot {
            seq,
            job,
            prefilled: cached,
            pos: cached,
            pending: None,
            logits_at: None,
            output: Vec::new(),
            counts: HashMap::new(),
            text,
            done: false,
            commit: commitments.then(CommitmentBuilder::default),
            prompt_rows: Vec::new(),
        }
    }

    /// The tokens whose keys and values this slot's sequence holds, in position order.
    fn decoded(&self) -> Vec<LlamaToken> {
        let prompt = &self.job.prompt[..self.prefilled];
        let outputs = self.pos.saturating_sub(self.job.prompt.len());
        let output = self.output.iter().take(outputs).map(|&t| LlamaToken(t));
        prompt.iter().copied().chain(output).collect()
    }

    fn send(&self, event: EngineEvent) -> bool {
        self.job.events.blocking_send(event).is_ok()
    }

    /// Take the sampled token: stream its text and decide whether the job ends.
    fn accept(&mut self, model: &LlamaModel, token: LlamaToken, window: usize) {
        // Sampled from the model's logits, so always inside the vocabulary.
        let Some(Piece::Bytes(bytes)) = token_piece(model, token.0) else {
            return self.finish(FinishReason::Stop, false);
        };
        self.output.push(token.0);
        let released = self.text.push(&bytes);
        if !released.text.is_empty() && !self.send(EngineEvent::Text(released.text)) {
            self.done = true;
            return;
        }
        if released.stopped {
            return self.finish(FinishReason::Stop, true);
        }
        if self.output.len() >= self.job.params.max_tokens as usize || self.pos >= window {
            return self.finish(FinishReason::Length, false);
        }
        self.pending = Some(token);
    }

    /// Flush held-back text and send `Finished`.
    fn finish(&mut self, finish_reason: FinishReason, stopped_by_string: bool) {
        self.done = true;
        if !stopped_by_string {
            let tail = self.text.finish().text;
            if !tail.is_empty() && !self.send(EngineEvent::Text(tail)) {
                return;
            }
        }
        let output_tokens = self.output.clone();
        let commitments = self.commit.take().map(CommitmentBuilder::finish);
        self.send(EngineEvent::Finished {
            finish_reason,
            output_tokens,
            commitments,
        });
    }
}

/// The worker thread: owns the context and schedules jobs until the engine
/// (and with it the job sender) is dropped and no job is left.
pub(crate) fn worker(
    backend: &LlamaBackend,
    model: &LlamaModel,
    config: &LlamaEngineConfig,
    queue: &Receiver<Job>,
    ready: &SyncSender<Result<(), String>>,
) {
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(i32::MAX);
    let max_seqs = config.max_sequences.clamp(1, 256);
    let window = config.context_length.max(16);
    let batch_size = config.batch_size.max(max_seqs as u32);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(window.saturating_mul(max_seqs as u32)))
        .with_n_seq_max(max_seqs as u32)
        .with_kv_unified(false)
        .with_type_k(config.kv_cache.llama_type())
        .with_type_v(config.kv_cache.llama_type())
        .with_n_batch(batch_size)
        .with_n_ubatch(batch_size)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    // Commitments need the final hidden state of every decoded token:
    // embeddings without pooling (llama.cpp then outputs every batch token).
    let params = if config.commitments {
        params
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::None)
    } else {
        params
    };
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => {
            let _ = ready.send(Ok(()));
            ctx
        }
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create a llama.cpp context: {e}")));
            return;
        }
    };
    let mut batch = LlamaBatch::new(batch_size as usize, max_seqs as i32);
    // In arrival order (prompt chunks are served in it); the batch is built in seq order.
    let mut slots: Vec<Slot> = Vec::with_capacity(max_seqs);
    let mut free = FreeSeqs::new(max_seqs);
    let mut cache = PrefixCache::new(max_seqs, config.prompt_cache);
    let mut open = true;
    loop {
        let mut held = Held {
            ctx: &mut ctx,
            free: &mut free,
            cache: &mut cache,
        };
        open &= admit(queue, &mut slots, &mut held, config.commitments);
        if slots.is_empty() {
            if !open {
                return;
            }
            continue;
        }
        compact(&mut held, &mut slots);
        if let Err(message) = step(model, held.ctx, &mut batch, &mut slots, window as usize) {
            tracing::warn!(%message, "batch decode failed; failing its jobs");
            for slot in slots.drain(..) {
                let _ = slot.send(EngineEvent::Failed(message.clone()));
                // What the failed decode left in the sequence is unknown: keep nothing.
                held.release(slot.seq, Vec::new());
            }
        }
        let mut i = 0;
        while i < slots.len() {
            if slots[i].done || slots[i].job.events.is_closed() {
                let slot = slots.remove(i);
                held.release(slot.seq, slot.decoded());
            } else {
                i += 1;
            }
        }
    }
}

/// Move queued jobs into free sequences. Blocks only when nothing is
/// running. Returns false once the queue is closed.
fn admit(queue: &Receiver<Job>, slots: &mut Vec<Slot>, held: &mut Held, commitments: bool) -> bool {
    while held.free.lowest().is_some() {
        let job = if slots.is_empty() {
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return false,
            }
        } else {
            match queue.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        };
        if job.events.is_closed() {
            continue;
        }
        let Some((seq, cached)) = held.take(&job.prompt, commitments) else {
            return true;
        };
        let prompt_tokens = job.prompt.iter().map(|t| t.0).collect();
        let started = EngineEvent::Started {
            prompt_tokens,
            cached_tokens: u32::try_from(cached).unwrap_or(u32::MAX),
        };
        if job.events.blocking_send(started).is_err() {
            held.release(seq, job.prompt[..cached].to_vec());
            continue;
        }
        slots.push(Slot::new(seq, job, cached, commitments));
    }
    true
}

/// Close the holes jobs left below the highest held sequence id by moving the
/// highest-id jobs down (see [`crate::seqs`]), so one step is one graph compute.
fn compact(held: &mut Held, slots: &mut [Slot]) {
    loop {
        let ids: Vec<i32> = slots.iter().map(|s| s.seq).collect();
        let Some(Move { from, to }) = next_move(&ids, held.free) else {
            return;
        };
        let Some(slot) = slots.iter_mut().find(|s| s.seq == from) else {
            return;
        };
        // The hole may still hold a finished job's prefix: the job's stream
        // replaces it, or, with nothing decoded yet, it is cleared.
        held.cache.forget(to);
        if slot.pos > 0 {
            // Queued by llama.cpp, done at the start of the next decode.
            let _ = held.ctx.copy_kv_cache_seq(from, to, None, None);
        } else {
            let _ = held.ctx.clear_kv_cache_seq(Some(to as u32), None, None);
        }
        let _ = held.ctx.clear_kv_cache_seq(Some(from as u32), None, None);
        slot.seq = to;
    }
}

/// One decode step: a token for every generating slot, then prompt chunks in
/// arrival order while the batch has room; then sample where logits came back.
fn step(
    model: &LlamaModel,
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    slots: &mut [Slot],
    window: usize,
) -> Result<(), String> {
    batch.clear();
    let capacity = ctx.n_batch() as usize;
    // With commitments on llama.cpp outputs every token; mark them so it need not override.
    let all_out = slots.first().is_some_and(|s| s.commit.is_some());
    // Decode tokens first, then prompt chunks in arrival order while the batch has room...
    let mut room = capacity - slots.iter().filter(|s| s.pending.is_some()).count();
    let mut takes = vec![0usize; slots.len()];
    for (take, slot) in takes.iter_mut().zip(slots.iter()) {
        *take = (slot.job.prompt.len() - slot.prefilled).min(room);
        room -= *take;
    }
    // ...but laid out in sequence-id order, each slot's tokens together, so
    // llama.cpp can take consecutive sequences in one micro-batch.
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_unstable_by_key(|&i| slots[i].seq);
    let mut used = 0usize;
    for k in order {
        let slot = &mut slots[k];
        slot.logits_at = None;
        if let Some(token) = slot.pending.take() {
            batch
                .add(token, slot.pos as i32, &[slot.seq], true)
                .map_err(|e| e.to_string())?;
            slot.logits_at = Some(used as i32);
            slot.pos += 1;
            used += 1;
            continue;
        }
        let prompt_len = slot.job.prompt.len();
        for i in slot.prefilled..slot.prefilled + takes[k] {
            let last = i + 1 == prompt_len;
            batch
                .add(slot.job.prompt[i], i as i32, &[slot.seq], last || all_out)
                .map_err(|e| e.to_string())?;
            if slot.commit.is_some() && CommitmentBuilder::wants_prompt(i, prompt_len) {
                slot.prompt_rows.push((used as i32, i));
            }
            if last {
                slot.logits_at = Some(used as i32);
            }
            used += 1;
        }
        slot.prefilled += takes[k];
        slot.pos = slot.prefilled;
    }
    if used == 0 {
        return Ok(());
    }
    ctx.decode(batch)
        .map_err(|e| format!("decode failed: {e}"))?;
    for slot in slots.iter_mut() {
        record_prompt_hidden(ctx, slot)?;
        let Some(at) = slot.logits_at else { continue };
        if slot.job.events.is_closed() {
            continue;
        }
        let position = u32::try_from(slot.output.len()).unwrap_or(u32::MAX);
        slot.logits_at = None;
        let params = &slot.job.params;
        let mut logits = penalised(ctx.get_logits_ith(at), &slot.counts, params);
        if let Some(guide) = &slot.job.guide {
            guide.mask(logits.to_mut());
        }
        match sample(&logits, params, position, params.choice) {
            Some(token) => {
                let allowed = match slot.job.guide.as_mut() {
                    Some(guide) => guide.advance(token as u32).is_ok(),
                    None => true,
                };
                if !allowed {
                    // The mask let it through, so this is a bug; fail rather than break the shape.
                    let _ = slot.send(EngineEvent::Failed(
                        "sampled a token the constraint forbids".into(),
                    ));
                    slot.done = true;
                    continue;
                }
                // End-of-generation tokens are not part of the output, so they get no logprob.
                let eog = model.vocab().is_eog(LlamaToken(token as i32));
                if let (Some(top), false) = (params.logprobs, eog) {
                    let piece = |t: i32| model.vocab().token_to_piece(LlamaToken(t), false, None);
                    let lp = logprobs(&logits, token, usize::from(top), piece);
                    if !slot.send(EngineEvent::Logprob(lp)) {
                        slot.done = true;
                        continue;
                    }
                }
                if let (Some(builder), false) = (slot.commit.as_mut(), eog) {
                    let hidden = ctx.embeddings_ith(at);
                    builder.push_output(hidden.map_err(|e| format!("hidden state: {e}"))?);
                }
                let token = token as i32;
                *slot.counts.entry(token).or_default() += 1;
                slot.accept(model, LlamaToken(token), window)
            }
            None => {
                let why = if slot.job.guide.is_some() {
                    "no token can continue the constrained output"
                } else {
                    "the model produced no finite logits"
                };
                let _ = slot.send(EngineEvent::Failed(why.into()));
                slot.done = true;
            }
        }
    }
    Ok(())
}

/// Feed the hidden states of this step's covered prompt positions to the slot's commitment.
fn record_prompt_hidden(ctx: &LlamaContext<'_>, slot: &mut Slot) -> Result<(), String> {
    let prompt_len = slot.job.prompt.len();
    for (at, position) in std::mem::take(&mut slot.prompt_rows) {
        if let Some(builder) = slot.commit.as_mut() {
            let hidden = ctx
                .embeddings_ith(at)
                .map_err(|e| format!("hidden state: {e}"))?;
            builder.push_prompt(position, prompt_len, hidden);
        }
    }
    Ok(())
}
