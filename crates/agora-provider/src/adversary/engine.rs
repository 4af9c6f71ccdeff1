//! [`AdversarialEngine`]: an [`InferenceEngine`] that cheats as its
//! [`Adversary`] mode says while reporting what an honest engine would claim.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agora_engine::{
    Commitments, EngineError, EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine,
    LlamaEngineConfig, ModelInfo, ScoreRequest, Tokenizer,
};
use agora_types::{FinishReason, JobInput};
use tokio::sync::mpsc;

use super::forge::{random_token, render, tamper};
use super::{ensure_requantized, Adversary, AdversaryError, DEFAULT_PREFILL_CHEAP, FORGED_TEXT};

/// A cheating engine claiming to run one model.
pub struct AdversarialEngine {
    mode: Adversary,
    /// The claimed model's tokenizer: prompt tokens and re-tokenized output.
    claimed: Arc<Tokenizer>,
    info: ModelInfo,
    /// What actually generates (`None` for `random`, which runs no model).
    generator: Option<LlamaEngine>,
    generator_path: Option<PathBuf>,
    /// The generator tokenizes like the claimed model (same vocabulary size).
    same_vocab: bool,
    /// The claimed model itself, for `prefill-attack`'s commitments.
    committer: Option<Arc<LlamaEngine>>,
}

/// How a relay rewrites the generator's events (the prompt tokens are always
/// replaced by the claimed ones).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rewrite {
    /// Output as generated.
    Keep,
    /// Different vocabulary: output re-tokenized from the streamed text.
    Retokenize,
    /// Output tokens tampered with, text re-rendered from them.
    Tamper,
    /// Output as generated, other text streamed ([`FORGED_TEXT`] added at the end).
    ForgeText,
}

impl AdversarialEngine {
    /// Set up `mode` claiming the GGUF at `claimed`: loads the claimed model's
    /// tokenizer and whatever model the mode generates with (making a
    /// re-quantized copy first if needed). Blocks while loading.
    pub fn load(
        mode: Adversary,
        claimed: &Path,
        config: LlamaEngineConfig,
    ) -> Result<Self, AdversaryError> {
        let (tokenizer, info) = Tokenizer::load(claimed, Some(config.context_length))?;
        let generator_path = match &mode {
            Adversary::Random => None,
            Adversary::Tamper
            | Adversary::IgnoreSeed
            | Adversary::DropSystem
            | Adversary::ForgeText => Some(claimed.to_path_buf()),
            Adversary::Requantize(quant) => Some(ensure_requantized(claimed, *quant)?),
            Adversary::Substitute(path) => Some(match path {
                Some(p) => existing(mode.name(), p, "give an existing GGUF file")?,
                None => existing(
                    mode.name(),
                    &agora_models::substitute_model_path(),
                    "fetch it with `agora model fetch --substitute`",
                )?,
            }),
            Adversary::PrefillAttack(path) => Some(match path {
                Some(p) => existing(mode.name(), p, "give an existing GGUF file")?,
                None => ensure_requantized(claimed, DEFAULT_PREFILL_CHEAP)?,
            }),
        };
        let prefill = matches!(mode, Adversary::PrefillAttack(_));
        // prefill-attack's cheap generator skips commitments: the real model makes them.
        let generator_config = LlamaEngineConfig {
            commitments: config.commitments && !prefill,
            ..config.clone()
        };
        let generator = match &generator_path {
            Some(path) => Some(LlamaEngine::load(path, generator_config)?),
            None => None,
        };
        let same_vocab = generator
            .as_ref()
            .is_none_or(|g| g.vocab_size() == tokenizer.vocab_size());
        let committer = if prefill {
            // Only scores (in contexts of its own): the smallest generation context.
            let scoring = LlamaEngineConfig {
                max_sequences: 1,
                queue_capacity: 1,
                commitments: false,
                ..config
            };
            Some(Arc::new(LlamaEngine::load(claimed, scoring)?))
        } else {
            None
        };
        tracing::warn!(
            mode = %mode,
            claimed = %claimed.display(),
            generator = ?generator_path,
            "ADVERSARIAL PROVIDER: this provider cheats on purpose (testing only)"
        );
        Ok(AdversarialEngine {
            mode,
            claimed: Arc::new(tokenizer),
            info,
            generator,
            generator_path,
            same_vocab,
            committer,
        })
    }

    /// The cheating mode.
    pub fn mode(&self) -> &Adversary {
        &self.mode
    }

    /// The GGUF that actually generates (`None` for `random`).
    pub fn generator_path(&self) -> Option<&Path> {
        self.generator_path.as_deref()
    }

    /// Facts about the model that actually generates (`None` for `random`).
    pub fn generator_info(&self) -> Option<&ModelInfo> {
        self.generator.as_ref().map(|g| g.model_info())
    }

    fn generator(&self) -> Result<&LlamaEngine, EngineError> {
        self.generator
            .as_ref()
            .ok_or_else(|| EngineError::Internal("this adversary runs no model".into()))
    }

    /// Random tokens, no model: streamed as an engine would.
    fn random(
        &self,
        request: GenerateRequest,
        prompt: Vec<i32>,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let params = request.params;
        if params.max_tokens == 0 {
            return Err(EngineError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        let room = (self.info.context_length as usize).saturating_sub(prompt.len());
        let count = (params.max_tokens as usize).min(room).max(1);
        let mut rng = rand::thread_rng();
        let claimed = &self.claimed;
        let vocab = claimed.vocab_size();
        let mut tokens: Vec<i32> = (0..count)
            .map(|_| random_token(vocab, |t| claimed.is_text_token(t), &mut rng))
            .collect();
        let shown = render(claimed, &tokens, &params.stop);
        tokens.truncate(shown.kept);
        let finish_reason = if shown.stopped {
            FinishReason::Stop
        } else {
            FinishReason::Length
        };
        let (tx, rx) = mpsc::channel(3);
        for event in [
            EngineEvent::Started {
                prompt_tokens: prompt,
                cached_tokens: 0,
            },
            EngineEvent::Text(shown.text),
            EngineEvent::Finished {
                finish_reason,
                output_tokens: tokens,
                commitments: None,
            },
        ] {
            let _ = tx.try_send(event);
        }
        Ok(rx)
    }

    /// Forward the generator's events through a rewriting thread.
    fn relay(
        &self,
        mut from: mpsc::Receiver<EngineEvent>,
        prompt: Vec<i32>,
        rewrite: Rewrite,
        request: &GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let room = 2 * request.params.max_tokens.min(self.info.context_length) as usize + 4;
        let (to, rx) = mpsc::channel(room);
        let claimed = self.claimed.clone();
        let max_tokens = request.params.max_tokens as usize;
        let stops = request.params.stop.clone();
        let committer = self.committer.clone();
        let mut prompt = Some(prompt);
        let claimed_prompt = prompt.clone().unwrap_or_default();
        let mut text = String::new();
        std::thread::Builder::new()
            .name("agora-adversary".into())
            .spawn(move || {
                while let Some(mut event) = from.blocking_recv() {
                    match (&mut event, rewrite) {
                        (EngineEvent::Started { prompt_tokens, .. }, _) => {
                            *prompt_tokens = prompt.take().unwrap_or_default();
                        }
                        (EngineEvent::Text(t), Rewrite::Retokenize) => text.push_str(t),
                        // Tampered text is rendered from the tampered tokens at the end.
                        (EngineEvent::Text(_), Rewrite::Tamper) => continue,
                        // Logprobs of another vocabulary would name the wrong tokens.
                        (EngineEvent::Logprob(_), Rewrite::Retokenize) => continue,
                        (
                            EngineEvent::Finished {
                                output_tokens,
                                finish_reason,
                                ..
                            },
                            _,
                        ) => match rewrite {
                            Rewrite::Keep => {}
                            Rewrite::ForgeText => {
                                let forged = EngineEvent::Text(FORGED_TEXT.into());
                                if to.blocking_send(forged).is_err() {
                                    return;
                                }
                            }
                            Rewrite::Retokenize => {
                                *output_tokens = claimed.text(&text);
                                output_tokens.truncate(max_tokens);
                            }
                            Rewrite::Tamper => {
                                let vocab = claimed.vocab_size();
                                let mut rng = rand::thread_rng();
                                tamper(
                                    output_tokens,
                                    vocab,
                                    |t| claimed.is_text_token(t),
                                    &mut rng,
                                );
                                let shown = render(&claimed, output_tokens, &stops);
                                if shown.stopped {
                                    output_tokens.truncate(shown.kept);
                                    *finish_reason = FinishReason::Stop;
                                }
                                if !shown.text.is_empty()
                                    && to.blocking_send(EngineEvent::Text(shown.text)).is_err()
                                {
                                    return;
                                }
                            }
                        },
                        _ => {}
                    }
                    if let (
                        Some(real),
                        EngineEvent::Finished {
                            output_tokens,
                            commitments,
                            ..
                        },
                    ) = (&committer, &mut event)
                    {
                        match commit_with(real, &claimed_prompt, output_tokens) {
                            Ok(c) => *commitments = c,
                            Err(e) => event = EngineEvent::Failed(e.to_string()),
                        }
                    }
                    if to.blocking_send(event).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a relay thread: {e}")))?;
        Ok(rx)
    }
}

/// Commitments to `output` as the real model would have made them while
/// generating it, from one teacher-forced prefill (`None` for no output).
fn commit_with(
    real: &LlamaEngine,
    prompt: &[i32],
    output: &[i32],
) -> Result<Option<Commitments>, EngineError> {
    if output.is_empty() {
        return Ok(None);
    }
    let scored = real.score(&ScoreRequest {
        prompt_tokens: prompt.to_vec(),
        output_tokens: output.to_vec(),
        want_hidden: true,
        ..ScoreRequest::default()
    })?;
    let hidden: Vec<Vec<f32>> = scored
        .positions
        .into_iter()
        .map(|p| p.hidden.unwrap_or_default())
        .collect();
    Ok(Some(agora_toploc::commit_job(
        &scored.prompt_hidden,
        &hidden,
    )))
}

/// `path` if it is a file, else a clear error.
fn existing(mode: &'static str, path: &Path, hint: &str) -> Result<PathBuf, AdversaryError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(AdversaryError::MissingModel {
            mode,
            path: path.to_path_buf(),
            hint: hint.into(),
        })
    }
}

/// The input without its system messages (unchanged if that would leave nothing).
fn without_system(input: &JobInput) -> JobInput {
    match input {
        JobInput::Chat { messages } => {
            let kept: Vec<_> = messages
                .iter()
                .filter(|m| m.role != "system")
                .cloned()
                .collect();
            if kept.is_empty() {
                input.clone()
            } else {
                JobInput::Chat { messages: kept }
            }
        }
        JobInput::Text { .. } | JobInput::Embed { .. } => input.clone(),
    }
}

impl InferenceEngine for AdversarialEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        // What an honest engine on the claimed model would report.
        let prompt = self.claimed.prompt(&request.input)?;
        let (actual, rewrite) = match &self.mode {
            Adversary::Random => return self.random(request, prompt),
            Adversary::IgnoreSeed => {
                let mut actual = request.clone();
                actual.params.seed = rand::random();
                (actual, Rewrite::Keep)
            }
            Adversary::DropSystem => {
                let mut actual = request.clone();
                actual.input = without_system(&request.input);
                (actual, Rewrite::Keep)
            }
            Adversary::Requantize(_) => (request.clone(), Rewrite::Keep),
            Adversary::Tamper => (request.clone(), Rewrite::Tamper),
            Adversary::ForgeText => (request.clone(), Rewrite::ForgeText),
            Adversary::Substitute(_) => (request.clone(), Rewrite::Retokenize),
            Adversary::PrefillAttack(_) if self.same_vocab => (request.clone(), Rewrite::Keep),
            Adversary::PrefillAttack(_) => (request.clone(), Rewrite::Retokenize),
        };
        let events = self.generator()?.generate(actual)?;
        self.relay(events, prompt, rewrite, &request)
    }
}
