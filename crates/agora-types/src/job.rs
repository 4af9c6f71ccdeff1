//! The provider job protocol: what the gateway asks a provider for, the events
//! a provider streams back, and the signed receipt that closes every job.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use agora_toploc::Commitments;

use crate::{codec, AccountId, Amount, Hash32, KeyError, Keypair, ModelId, Price, Signature};

const RECEIPT_SIGNING_DOMAIN: &str = "agora 2026 receipt signature v3";
const TOKENS_DOMAIN: &str = "agora 2026 token sequence v1";
const OUTPUT_TEXT_DOMAIN: &str = "agora 2026 output text v1";
const EMBEDDINGS_DOMAIN: &str = "agora 2026 embeddings v1";

/// One chat message, as in OpenAI's API.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text content.
    pub content: String,
}

/// The prompt of a job.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobInput {
    /// Messages rendered with the model's own chat template.
    Chat {
        /// The conversation.
        messages: Vec<ChatMessage>,
    },
    /// Raw text completion.
    Text {
        /// The prompt text.
        prompt: String,
    },
    /// Texts to embed (`/v1/embeddings`): no generation; the job's output is
    /// one vector per text ([`JobEvent::Embeddings`]).
    Embed {
        /// The texts, in order.
        inputs: Vec<String>,
    },
}

/// Sampling parameters; together with the seed they make a job replayable.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus mass kept before sampling, in (0, 1].
    pub top_p: f32,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
    /// Seed of the counter-based RNG.
    pub seed: u64,
    /// Subtracted once from the logit of every token already generated (OpenAI's `presence_penalty`).
    #[serde(default)]
    pub presence_penalty: f32,
    /// Subtracted from a token's logit per time it was generated (OpenAI's `frequency_penalty`).
    #[serde(default)]
    pub frequency_penalty: f32,
    /// Index of this completion among the request's `n`; selects the RNG stream.
    #[serde(default)]
    pub choice: u32,
    /// Report log-probabilities with this many top alternatives per token (`None`: no logprobs).
    #[serde(default)]
    pub logprobs: Option<u8>,
    /// What the output must parse as (`None`: free text); sampling masks every
    /// token that would break it, and an auditor's replay applies the same mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<OutputConstraint>,
}

/// A shape the generated text must take, enforced token by token.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConstraint {
    /// One JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// One JSON value valid under a JSON Schema (OpenAI's `json_schema`).
    JsonSchema {
        /// The schema as compact JSON text, keys in the order the client gave
        /// them (properties are generated in that order).
        schema: String,
    },
}

impl SamplingParams {
    /// Parameters with the given essentials and no penalties, choice 0, no logprobs.
    pub fn new(
        max_tokens: u32,
        temperature: f32,
        top_p: f32,
        stop: Vec<String>,
        seed: u64,
    ) -> Self {
        SamplingParams {
            max_tokens,
            temperature,
            top_p,
            stop,
            seed,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            choice: 0,
            logprobs: None,
            constraint: None,
        }
    }
}

/// One alternative at a generated position, as OpenAI's `top_logprobs` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// Token id.
    pub token_id: i32,
    /// The token's text (lossy if it is part of a UTF-8 character).
    pub token: String,
    /// The token's raw bytes.
    pub bytes: Vec<u8>,
    /// Natural-log probability under the (penalised) model distribution.
    pub logprob: f32,
}

/// The log-probability of a generated token and its strongest alternatives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The generated token.
    pub chosen: TopLogprob,
    /// The most likely tokens at this position, best first.
    pub top: Vec<TopLogprob>,
}

/// A job sent to a provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Model to run; must be one the provider serves.
    pub model: ModelId,
    /// The prompt.
    pub input: JobInput,
    /// How to sample.
    pub params: SamplingParams,
}

/// Why generation ended, in OpenAI's vocabulary.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

/// Token counts of a job.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Usage {
    /// Tokens in the rendered prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

/// What a provider streams back for a job, one JSON object per SSE event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// One `Done` per job, and events are moved, never stored in bulk: boxing the receipt saves nothing.
#[allow(clippy::large_enum_variant)]
pub enum JobEvent {
    /// Newly generated text; the receipt's `text_hash` commits to the text
    /// of every delta of the job, in order.
    Delta {
        /// The text, always whole UTF-8 characters.
        text: String,
    },
    /// The job finished; always the last event of a successful job.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Token counts.
        usage: Usage,
        /// The provider's signed receipt.
        receipt: SignedReceipt,
        /// How many of the prompt's tokens the provider took from its prompt
        /// cache instead of computing them (OpenAI's `cached_tokens`);
        /// informational, not signed: the price is per prompt token either way.
        #[serde(default)]
        cached_tokens: u32,
    },
    /// Log-probabilities of generated tokens (only when requested); sent before
    /// the delta that carries their text.
    Logprobs {
        /// One entry per generated token.
        tokens: Vec<TokenLogprob>,
    },
    /// The vectors of an embedding job ([`JobInput::Embed`]), one per input,
    /// in order; sent once, before `Done`, whose receipt's `output_hash` is
    /// their [`hash_embeddings`].
    Embeddings {
        /// The vectors.
        vectors: Vec<Vec<f32>>,
    },
    /// The job failed after it started.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// What a provider attests to for one job.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// Chain the job was served for, so a receipt signed for one network
    /// can never be counted (committed, audited, paid) on another.
    pub chain_id: String,
    /// Job id, chosen by the provider when the job starts.
    pub id: Hash32,
    /// Provider that ran the job.
    pub provider: AccountId,
    /// Model that ran.
    pub model: ModelId,
    /// [`hash_tokens`] of the prompt tokens.
    pub prompt_hash: Hash32,
    /// [`hash_tokens`] of the generated tokens.
    pub output_hash: Hash32,
    /// [`hash_output_text`] of the text streamed to the client: the `text`
    /// of every [`JobEvent::Delta`], concatenated in order.
    pub text_hash: Hash32,
    /// Sampling parameters, seed included.
    pub params: SamplingParams,
    /// Token counts.
    pub usage: Usage,
    /// Price in force.
    pub price: Price,
    /// What the job costs under `price`.
    pub cost: Amount,
    /// Provider's clock when the job finished, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// [`commitments_hash`] of the job's activation commitments; all zeros
    /// ([`Hash32::ZERO`]) when the engine made none.
    #[serde(default = "no_commitments")]
    pub commitments: Hash32,
}

fn no_commitments() -> Hash32 {
    Hash32::ZERO
}

/// What a receipt's `commitments` field holds for these commitments (all
/// zeros for none; a real hash is never all zeros in practice).
pub fn commitments_hash(commitments: Option<&Commitments>) -> Hash32 {
    commitments.map_or_else(no_commitments, |c| Hash32(c.hash()))
}

/// A receipt with the provider's signature.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// Provider's signature over [`Receipt::signing_bytes`].
    pub signature: Signature,
}

impl Receipt {
    /// The exact bytes the provider signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Hash32::digest_in(RECEIPT_SIGNING_DOMAIN, &codec::encode(self))
            .0
            .to_vec()
    }

    /// Sign with the provider's key.
    pub fn sign(self, key: &Keypair) -> SignedReceipt {
        let signature = key.sign(&self.signing_bytes());
        SignedReceipt {
            receipt: self,
            signature,
        }
    }
}

impl SignedReceipt {
    /// Check the signature against the named provider.
    pub fn verify(&self) -> Result<(), KeyError> {
        self.receipt
            .provider
            .verify(&self.receipt.signing_bytes(), &self.signature)
    }
}

/// Everything a provider keeps about a job so an auditor can replay it.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transcript {
    /// The signed receipt.
    pub receipt: SignedReceipt,
    /// The job's input as the client sent it.
    pub input: JobInput,
    /// Prompt token ids (hash: `receipt.prompt_hash`).
    pub prompt_tokens: Vec<i32>,
    /// Generated token ids (hash: `receipt.output_hash`).
    pub output_tokens: Vec<i32>,
    /// Activation commitments (hash: `receipt.commitments`), if the engine made them.
    #[serde(default)]
    pub commitments: Option<Commitments>,
    /// An embedding job's vectors (hash: `receipt.output_hash`); empty otherwise.
    #[serde(default)]
    pub embeddings: Vec<Vec<f32>>,
}

/// Commitment to the text a job streamed (a receipt's `text_hash`): BLAKE3 in
/// derive-key mode (context "agora 2026 output text v1") of its UTF-8 bytes.
pub fn hash_output_text(text: &str) -> Hash32 {
    let mut hasher = OutputTextHasher::default();
    hasher.update(text);
    hasher.finish()
}

/// [`hash_output_text`] of text that arrives in pieces, without keeping it:
/// the hash of the pieces' concatenation.
#[derive(Clone, Debug)]
pub struct OutputTextHasher(blake3::Hasher);

impl Default for OutputTextHasher {
    fn default() -> Self {
        OutputTextHasher(blake3::Hasher::new_derive_key(OUTPUT_TEXT_DOMAIN))
    }
}

impl OutputTextHasher {
    /// Append the next piece of text.
    pub fn update(&mut self, text: &str) {
        self.0.update(text.as_bytes());
    }

    /// The hash of everything appended so far.
    pub fn finish(&self) -> Hash32 {
        Hash32(*self.0.finalize().as_bytes())
    }
}

/// Commitment to an embedding job's vectors (its receipt's `output_hash`):
/// BLAKE3 in derive-key mode (context "agora 2026 embeddings v1") of each
/// vector's length (u32, little-endian) followed by its floats (f32,
/// little-endian), vector after vector.
pub fn hash_embeddings(vectors: &[Vec<f32>]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(EMBEDDINGS_DOMAIN);
    for v in vectors {
        hasher.update(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        for x in v {
            hasher.update(&x.to_le_bytes());
        }
    }
    Hash32(*hasher.finalize().as_bytes())
}

/// Commitment to a token sequence, used for prompt and output hashes.
pub fn hash_tokens(tokens: &[i32]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(TOKENS_DOMAIN);
    for t in tokens {
        hasher.update(&t.to_le_bytes());
    }
    Hash32(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_signature_binds_output() {
        let key = Keypair::generate();
        let receipt = Receipt {
            chain_id: "agora-test".into(),
            id: Hash32::digest(b"job"),
            provider: key.account(),
            model: Hash32::digest(b"model"),
            prompt_hash: hash_tokens(&[1, 2, 3]),
            output_hash: hash_tokens(&[4, 5]),
            text_hash: hash_output_text("four five"),
            params: SamplingParams::new(8, 0.7, 1.0, vec![], 9),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
            },
            price: Price::default(),
            cost: 0,
            timestamp_ms: 1,
            commitments: commitments_hash(Some(&Commitments::default())),
        };
        let signed = receipt.sign(&key);
        assert!(signed.verify().is_ok());
        let mut forged = signed.clone();
        forged.receipt.output_hash = hash_tokens(&[4, 6]);
        assert!(forged.verify().is_err());
        // Attack: the same tokens, claiming other streamed text.
        let mut forged = signed.clone();
        forged.receipt.text_hash = hash_output_text("four six");
        assert!(forged.verify().is_err());
        let mut forged = signed.clone();
        forged.receipt.commitments = commitments_hash(None);
        assert!(forged.verify().is_err());
        // Attack: the same signed job presented on another network.
        let mut elsewhere = signed.clone();
        elsewhere.receipt.chain_id = "agora-other".into();
        assert!(elsewhere.verify().is_err());
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(
            serde_json::from_str::<SignedReceipt>(&json).unwrap(),
            signed
        );
    }

    #[test]
    fn token_hash_is_order_sensitive() {
        assert_ne!(hash_tokens(&[1, 2]), hash_tokens(&[2, 1]));
    }

    /// Pinned vectors, computed independently with Python's `blake3`:
    /// `blake3(text.encode(), derive_key_context="agora 2026 output text v1")`.
    #[test]
    fn output_text_hash_matches_the_pinned_vectors() {
        assert_eq!(
            hash_output_text("").to_hex(),
            "d894853bf5c3cb5549e57f6283a9b889aed7d510b8db963e464218ede6f0fd31"
        );
        assert_eq!(
            hash_output_text("Hello, wörld 🙂").to_hex(),
            "c1178fe8a05e385f6a6f56666f1ef6e1434f4a81a89e0a0294b90f23a76aef0f"
        );
        // Another domain than the token hashes, and pieces hash as their concatenation.
        assert_ne!(hash_output_text(""), hash_tokens(&[]));
        let mut pieces = OutputTextHasher::default();
        for piece in ["Hello, w", "ö", "rld 🙂"] {
            pieces.update(piece);
        }
        assert_eq!(pieces.finish(), hash_output_text("Hello, wörld 🙂"));
    }

    /// Pinned vector computed independently with Python's `blake3`:
    /// `h = blake3(derive_key_context="agora 2026 embeddings v1")`, then per
    /// vector `struct.pack('<I', len)` and `struct.pack('<f', x)` for each float.
    #[test]
    fn embeddings_hash_matches_the_pinned_vector() {
        let vectors = vec![vec![1.0f32, -0.5], vec![0.25]];
        assert_eq!(
            hash_embeddings(&vectors).to_hex(),
            "f942896550bc733669f3972828daf3da23584aa83e1b3d98bb6618fd60329256"
        );
        assert_ne!(
            hash_embeddings(&[vec![1.0, -0.5, 0.25]]),
            hash_embeddings(&vectors)
        );
    }

    /// Pinned vectors of the bytes a provider signs, computed independently
    /// with Python: the receipt's Borsh encoding written out field by field
    /// (`text_hash` right after `output_hash`; the params end with the
    /// constraint as an option: `00`, or `01` then the variant byte and, for
    /// `JsonSchema` (variant 1), the schema as a length-prefixed string), then
    /// `blake3(encoding, derive_key_context="agora 2026 receipt signature v3")`.
    #[test]
    fn receipt_signing_bytes_match_the_pinned_vectors() {
        let mut params = SamplingParams::new(8, 0.5, 1.0, vec!["\n".into()], 9);
        params.frequency_penalty = 0.25;
        params.choice = 1;
        params.logprobs = Some(3);
        let mut receipt = Receipt {
            chain_id: "agora-test".into(),
            id: Hash32([1; 32]),
            provider: AccountId([2; 32]),
            model: Hash32([3; 32]),
            prompt_hash: Hash32([4; 32]),
            output_hash: Hash32([5; 32]),
            text_hash: hash_output_text("Hello"),
            params,
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
            },
            price: Price {
                input_per_1k: 10,
                output_per_1k: 20,
            },
            cost: 7,
            timestamp_ms: 1234,
            commitments: Hash32([6; 32]),
        };
        assert_eq!(codec::encode(&receipt).len(), 322);
        assert_eq!(
            hex::encode(receipt.signing_bytes()),
            "2581614f15303f260f6444951c638ca440eb8932f8ac9709dad05a830c431d48"
        );
        receipt.params.constraint = Some(OutputConstraint::JsonObject);
        assert_eq!(
            hex::encode(receipt.signing_bytes()),
            "6f4a9cee77b056533d19f0dfae0d638192848c9e50afa078c2123824f0a47b9e"
        );
        receipt.params.constraint = Some(OutputConstraint::JsonSchema {
            schema: r#"{"type":"integer"}"#.into(),
        });
        assert_eq!(codec::encode(&receipt).len(), 345);
        assert_eq!(
            hex::encode(receipt.signing_bytes()),
            "2c3e95f1d845cc13801be9a8ae27eaeb5ac42cca23b9b482a490a6fc46480a0f"
        );
    }
}
