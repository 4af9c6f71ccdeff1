//! [`check_job`]: audit one transcript against the claimed model.

use agora_engine::text::{render, Piece};
use std::sync::Arc;

use agora_engine::{constraint_vocab, guide_for, EngineError, LlamaEngine, ScoreRequest, Scored};
use agora_grammar::Vocab;
use agora_toploc::ChunkCheck;
use agora_types::{commitments_hash, hash_output_text, hash_tokens, Hash32, JobInput, Transcript};
use serde::{Deserialize, Serialize};

use crate::plausible::{plausibility, Plausibility, MAX_PLAUSIBILITY_Z};
use crate::replay::{replay_tokens, TokenStats};
use crate::Thresholds;

const EVIDENCE_DOMAIN: &str = "agora 2026 verification evidence v1";

/// What the verifier needs from a model runtime: the prompt as the engine
/// renders it and a teacher-forced prefill with hidden states and logits.
pub trait Scorer {
    /// Render and tokenize a job's input exactly as generation does.
    fn tokenize(&self, input: &JobInput) -> Result<Vec<i32>, EngineError>;
    /// Score a finished job in one prefill (see [`ScoreRequest`]).
    fn score(&self, request: &ScoreRequest) -> Result<Scored, EngineError>;
    /// What token `id` contributes to generated text, exactly as generation
    /// streams it (`agora_engine::text`); `None` outside the vocabulary.
    fn piece(&self, id: i32) -> Option<Piece>;
    /// The vocabulary of `n_vocab` tokens as constrained jobs see it.
    fn constraint_vocab(&self, n_vocab: usize) -> Arc<Vocab> {
        Arc::new(constraint_vocab(n_vocab, |id| self.piece(id)))
    }
}

impl Scorer for LlamaEngine {
    fn tokenize(&self, input: &JobInput) -> Result<Vec<i32>, EngineError> {
        LlamaEngine::tokenize(self, input)
    }

    fn score(&self, request: &ScoreRequest) -> Result<Scored, EngineError> {
        LlamaEngine::score(self, request)
    }

    fn piece(&self, id: i32) -> Option<Piece> {
        LlamaEngine::piece(self, id)
    }

    fn constraint_vocab(&self, _n_vocab: usize) -> Arc<Vocab> {
        LlamaEngine::constraint_vocab(self)
    }
}

/// Worst-chunk summary of a commitment check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitmentStats {
    /// Chunks checked, the prompt chunk included.
    pub chunks: u32,
    /// Highest per-chunk exponent mismatch rate.
    pub max_exponent_mismatch_rate: f64,
    /// Highest per-chunk mean mantissa difference (f16 ulps).
    pub max_mean_mantissa_diff: f64,
    /// Largest single mantissa difference.
    pub max_mantissa_diff: u32,
}

impl CommitmentStats {
    fn from_checks(checks: &[ChunkCheck]) -> Self {
        let mut s = CommitmentStats {
            chunks: checks.len() as u32,
            ..Self::default()
        };
        for c in checks {
            s.max_exponent_mismatch_rate =
                s.max_exponent_mismatch_rate.max(c.exponent_mismatch_rate());
            s.max_mean_mantissa_diff = s.max_mean_mantissa_diff.max(c.mean_mantissa_diff);
            s.max_mantissa_diff = s.max_mantissa_diff.max(c.max_mantissa_diff);
        }
        s
    }
}

/// The outcome of auditing one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether every check passed.
    pub passed: bool,
    /// Why it failed, one line per failed check (empty when it passed).
    pub reasons: Vec<String>,
    /// Seeded replay of the output tokens.
    pub tokens: TokenStats,
    /// Commitments compared with recomputed hidden states (`None`: none to check).
    pub commitments: Option<CommitmentStats>,
    /// The statistical check of a job judged without exact replay (`None` otherwise).
    pub plausibility: Option<Plausibility>,
    /// BLAKE3 of the receipt's signing bytes and the measured statistics, to
    /// reference this verdict from an audit report.
    pub evidence_hash: Hash32,
}

impl Verdict {
    /// `tokens.match_rate`, the Token-DiFR headline figure.
    pub fn token_match_rate(&self) -> f64 {
        self.tokens.match_rate
    }
}

/// Why a job could not be audited at all (as opposed to failing the audit).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The scoring model failed.
    #[error("scoring failed: {0}")]
    Scorer(#[from] EngineError),
}

/// Audit `transcript` with `scorer` (which must run the receipt's model).
///
/// Checks (a) the receipt signature and that the prompt, output and
/// commitment hashes and token counts match the transcript, and that the
/// input renders to the claimed prompt tokens; (a') that the output tokens,
/// decoded as the engine streams them, give the text the receipt's
/// `text_hash` commits to, and that generation did not go on past a stop
/// string or an end-of-generation token; (b) the commitments against hidden
/// states recomputed by one teacher-forced prefill; (c) each output token
/// against the seeded Gumbel-max replay of the prefill logits.
pub fn check_job(
    scorer: &dyn Scorer,
    transcript: &Transcript,
    thresholds: &Thresholds,
) -> Result<Verdict, VerifyError> {
    let mut reasons = consistency(scorer, transcript)?;
    reasons.extend(streamed_text(scorer, transcript));
    let receipt = &transcript.receipt.receipt;
    let (tokens, commitments) = if transcript.output_tokens.is_empty() {
        (TokenStats::default(), None)
    } else {
        let want_hidden = transcript.commitments.is_some();
        let Some(scored) = prefill(scorer, transcript, want_hidden, "replayed", &mut reasons)?
        else {
            return Ok(unscored(reasons, transcript));
        };
        let logits = logits_of(&scored);
        let n_vocab = logits.first().map_or(0, |l| l.len());
        let guide =
            guide_for(&receipt.params, || scorer.constraint_vocab(n_vocab)).unwrap_or_else(|e| {
                reasons.push(format!("output constraint: {e}"));
                None
            });
        let tokens = replay_tokens(&logits, &transcript.output_tokens, &receipt.params, guide);
        let commitments = match &transcript.commitments {
            None => None,
            Some(c) => {
                let hidden: Vec<Vec<f32>> = scored
                    .positions
                    .into_iter()
                    .map(|p| p.hidden.unwrap_or_default())
                    .collect();
                match agora_toploc::check_job(c, &scored.prompt_hidden, &hidden) {
                    Ok(checks) => Some(CommitmentStats::from_checks(&checks)),
                    Err(e) => {
                        reasons.push(format!("commitments: {e}"));
                        None
                    }
                }
            }
        };
        (tokens, commitments)
    };
    judge(
        &mut reasons,
        &tokens,
        commitments.as_ref(),
        transcript,
        thresholds,
    );
    Ok(finish(reasons, tokens, commitments, None, transcript))
}

/// Audit a job that cannot be replayed token for token (a provider that
/// forwards to an upstream server): the same consistency checks as
/// [`check_job`], then, instead of the seeded replay and commitments, how
/// plausible the output tokens are as a sample of the claimed model
/// ([`crate::plausible`]); it fails above [`MAX_PLAUSIBILITY_Z`].
pub fn check_job_statistically(
    scorer: &dyn Scorer,
    transcript: &Transcript,
) -> Result<Verdict, VerifyError> {
    let mut reasons = consistency(scorer, transcript)?;
    if transcript.output_tokens.is_empty() {
        return Ok(unscored(reasons, transcript));
    }
    let Some(scored) = prefill(scorer, transcript, false, "scored", &mut reasons)? else {
        return Ok(unscored(reasons, transcript));
    };
    let params = &transcript.receipt.receipt.params;
    let p = plausibility(&logits_of(&scored), &transcript.output_tokens, params);
    if p.z > MAX_PLAUSIBILITY_Z {
        reasons.push(format!(
            "output implausible under the model: z {:.2} above {MAX_PLAUSIBILITY_Z} ({:.3} nats/token over the entropy)",
            p.z, p.mean_excess
        ));
    }
    Ok(finish(
        reasons,
        TokenStats::default(),
        None,
        Some(p),
        transcript,
    ))
}

/// One teacher-forced prefill of the transcript's tokens with logits (and
/// hidden states if `want_hidden`). Tokens outside the vocabulary, or more
/// than the context holds: no honest run of the claimed model produces that
/// transcript, so it fails (on evidence anyone can re-check) instead of
/// leaving the job unjudged: `None`, with the reason ("cannot be `what`") added.
fn prefill(
    scorer: &dyn Scorer,
    transcript: &Transcript,
    want_hidden: bool,
    what: &str,
    reasons: &mut Vec<String>,
) -> Result<Option<Scored>, VerifyError> {
    match scorer.score(&ScoreRequest {
        prompt_tokens: transcript.prompt_tokens.clone(),
        output_tokens: transcript.output_tokens.clone(),
        top_k: 0,
        want_hidden,
        want_logits: true,
    }) {
        Ok(scored) => Ok(Some(scored)),
        Err(EngineError::InvalidRequest(m)) => {
            reasons.push(format!("the transcript cannot be {what}: {m}"));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The logits that predicted each output token.
fn logits_of(scored: &Scored) -> Vec<&[f32]> {
    scored
        .positions
        .iter()
        .map(|p| p.logits.as_deref().unwrap_or(&[]))
        .collect()
}

/// The verdict from the reasons found and the statistics measured.
/// The verdict on a job whose output was never scored (no output tokens,
/// or a prefill the scorer refused): its reasons alone decide it.
fn unscored(reasons: Vec<String>, transcript: &Transcript) -> Verdict {
    finish(reasons, TokenStats::default(), None, None, transcript)
}

pub(crate) fn finish(
    reasons: Vec<String>,
    tokens: TokenStats,
    commitments: Option<CommitmentStats>,
    plausibility: Option<Plausibility>,
    transcript: &Transcript,
) -> Verdict {
    let mut verdict = Verdict {
        passed: reasons.is_empty(),
        reasons,
        tokens,
        commitments,
        plausibility,
        evidence_hash: Hash32::ZERO,
    };
    verdict.evidence_hash = evidence_hash(&verdict, transcript);
    verdict
}

/// BLAKE3 of the receipt's signing bytes and the verdict's statistics and reasons.
fn evidence_hash(v: &Verdict, transcript: &Transcript) -> Hash32 {
    let evidence = match &v.plausibility {
        None => serde_json::to_vec(&(&v.tokens, &v.commitments, &v.reasons)),
        Some(p) => serde_json::to_vec(&(&v.tokens, &v.commitments, &v.reasons, p)),
    }
    .expect("statistics always serialize");
    let mut bytes = transcript.receipt.receipt.signing_bytes();
    bytes.extend_from_slice(&evidence);
    Hash32::digest_in(EVIDENCE_DOMAIN, &bytes)
}

/// What every job's transcript must show first, whatever it ran: the
/// provider's signature on the receipt, and the prompt tokens it names.
pub(crate) fn signed_for_prompt(t: &Transcript) -> Vec<String> {
    let mut reasons = Vec::new();
    if t.receipt.verify().is_err() {
        reasons.push("receipt signature does not verify".into());
    }
    if hash_tokens(&t.prompt_tokens) != t.receipt.receipt.prompt_hash {
        reasons.push("prompt tokens do not match the receipt's prompt hash".into());
    }
    reasons
}

/// Check (a): everything that needs no model pass but the tokenizer.
fn consistency(scorer: &dyn Scorer, t: &Transcript) -> Result<Vec<String>, VerifyError> {
    let r = &t.receipt.receipt;
    let mut reasons = signed_for_prompt(t);
    if hash_tokens(&t.output_tokens) != r.output_hash {
        reasons.push("output tokens do not match the receipt's output hash".into());
    }
    if commitments_hash(t.commitments.as_ref()) != r.commitments {
        reasons.push("commitments do not match the receipt's commitments hash".into());
    }
    if r.usage.prompt_tokens as usize != t.prompt_tokens.len()
        || r.usage.completion_tokens as usize != t.output_tokens.len()
    {
        reasons.push("receipt usage does not match the token counts".into());
    }
    if t.output_tokens.len() > r.params.max_tokens as usize {
        reasons.push("more output tokens than max_tokens".into());
    }
    match scorer.tokenize(&t.input) {
        Ok(p) if p == t.prompt_tokens => {}
        Ok(_) => reasons.push("the input does not render to the claimed prompt tokens".into()),
        Err(EngineError::InvalidRequest(m)) => reasons.push(format!("the input is invalid: {m}")),
        Err(e) => return Err(e.into()),
    }
    Ok(reasons)
}

/// Check (a'): the text the provider must have streamed for the output
/// tokens, by the engine's own rendering ([`agora_engine::text::render`]
/// with the model's detokenizer and the job's stop strings), is the text
/// the receipt hashes, and the tokens end where generation ends. Only for
/// replayable jobs: an upstream server's detokenizer may legitimately
/// differ. Tokens outside the vocabulary are left to the prefill, which
/// fails them.
fn streamed_text(scorer: &dyn Scorer, t: &Transcript) -> Vec<String> {
    let Some(pieces) = t
        .output_tokens
        .iter()
        .map(|&id| scorer.piece(id))
        .collect::<Option<Vec<Piece>>>()
    else {
        return Vec::new();
    };
    let r = &t.receipt.receipt;
    let shown = render(pieces, &r.params.stop);
    let mut reasons = Vec::new();
    if shown.kept < t.output_tokens.len() {
        reasons.push(format!(
            "the output goes on after generation ended (a stop string or end-of-generation token at token {} of {})",
            shown.kept,
            t.output_tokens.len()
        ));
    }
    if hash_output_text(&shown.text) != r.text_hash {
        reasons.push(
            "the streamed text does not match the output tokens (the receipt's text hash differs)"
                .into(),
        );
    }
    reasons
}

/// Checks (b) and (c) against the thresholds.
fn judge(
    reasons: &mut Vec<String>,
    tokens: &TokenStats,
    commitments: Option<&CommitmentStats>,
    t: &Transcript,
    th: &Thresholds,
) {
    if tokens.match_rate < th.min_token_match_rate {
        reasons.push(format!(
            "token match rate {:.3} below {:.3}",
            tokens.match_rate, th.min_token_match_rate
        ));
    }
    if tokens.max_margin > th.max_token_margin {
        reasons.push(format!(
            "a token's replay margin {:.3} exceeds {:.3}",
            tokens.max_margin, th.max_token_margin
        ));
    }
    if tokens.mean_margin > th.max_mean_margin {
        reasons.push(format!(
            "mean replay margin {:.3} exceeds {:.3}",
            tokens.mean_margin, th.max_mean_margin
        ));
    }
    match commitments {
        Some(c) => {
            if c.max_exponent_mismatch_rate > th.max_exponent_mismatch_rate {
                reasons.push(format!(
                    "commitment exponent mismatch rate {:.3} exceeds {:.3}",
                    c.max_exponent_mismatch_rate, th.max_exponent_mismatch_rate
                ));
            }
            if c.max_mean_mantissa_diff > th.max_mean_mantissa_diff {
                reasons.push(format!(
                    "commitment mean mantissa difference {:.2} exceeds {:.2}",
                    c.max_mean_mantissa_diff, th.max_mean_mantissa_diff
                ));
            }
        }
        None if t.commitments.is_none() && th.require_commitments => {
            reasons.push("the receipt carries no commitments".into());
        }
        None => {}
    }
}
