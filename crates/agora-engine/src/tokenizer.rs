//! A GGUF's vocabulary and chat template, loaded without weights: engines
//! that do not run the claimed model themselves (an upstream server, an
//! adversarial test provider) still put the token ids [`LlamaEngine`]
//! would in their receipts.
//!
//! [`LlamaEngine`]: crate::LlamaEngine

use std::path::Path;

use crate::text::Piece;
use crate::{EngineError, ModelInfo};
use agora_types::JobInput;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

/// Context window assumed when neither the caller nor the GGUF gives one.
const FALLBACK_CONTEXT: u32 = 4096;

/// A vocabulary-only llama.cpp model: tokenizes and detokenizes like the full one.
pub struct Tokenizer {
    model: LlamaModel,
    template: Option<LlamaChatTemplate>,
    context_length: u32,
}

impl Tokenizer {
    /// Load `path`'s vocabulary and metadata (not its tensors); `context_length`
    /// `None` means the model's training context.
    pub fn load(
        path: &Path,
        context_length: Option<u32>,
    ) -> Result<(Self, ModelInfo), EngineError> {
        let load_error = |reason: String| EngineError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_error("no such file".into()));
        }
        let backend = crate::llama_backend().map_err(load_error)?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| load_error(e.to_string()))?;
        let mut info = crate::gguf_model_info(&model, path, u32::MAX);
        // A vocabulary-only load leaves llama.cpp's hyperparameters unset, so the
        // training context comes from the metadata itself.
        let trained = model
            .meta_val_str(&format!("{}.context_length", info.architecture))
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&n| n > 0);
        info.context_length = match (context_length, trained) {
            (Some(wanted), Some(trained)) => wanted.min(trained),
            (Some(wanted), None) => wanted,
            (None, Some(trained)) => trained,
            (None, None) => FALLBACK_CONTEXT,
        };
        let template = crate::default_chat_template(&model);
        let tokenizer = Tokenizer {
            model,
            template,
            context_length: info.context_length,
        };
        Ok((tokenizer, info))
    }

    /// The job's prompt tokens, as `LlamaEngine` would put them in its receipt.
    pub fn prompt(&self, input: &JobInput) -> Result<Vec<i32>, EngineError> {
        let tokens = crate::render_prompt(
            &self.model,
            self.template.as_ref(),
            self.context_length,
            input,
        )?;
        Ok(tokens.into_iter().map(|t| t.0).collect())
    }

    /// Generated text as token ids: no BOS, special-token text kept as plain text.
    pub fn text(&self, text: &str) -> Vec<i32> {
        if text.is_empty() {
            return Vec::new();
        }
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The id of the single token whose text is `bytes`, or -1 when the bytes
    /// are not UTF-8 or do not tokenize to exactly one token.
    pub fn token_id(&self, bytes: &[u8]) -> i32 {
        match std::str::from_utf8(bytes).map(|s| self.text(s)) {
            Ok(ids) if ids.len() == 1 => ids[0],
            _ => -1,
        }
    }

    /// Number of tokens in the vocabulary (valid ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        usize::try_from(self.model.n_vocab()).unwrap_or(0)
    }

    /// The bytes token `id` stands for in generated text (empty for control tokens).
    pub fn piece(&self, id: i32) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(id), false, None)
    }

    /// What token `id` contributes to generated text, exactly as
    /// [`LlamaEngine`] streams it ([`crate::text`]); `None` outside the vocabulary.
    ///
    /// [`LlamaEngine`]: crate::LlamaEngine
    pub fn token_piece(&self, id: i32) -> Option<Piece> {
        crate::llama::token_piece(&self.model, id)
    }

    /// Whether `id` is an ordinary text token: in the vocabulary, and neither a
    /// control token nor one that ends generation.
    pub fn is_text_token(&self, id: i32) -> bool {
        let vocab = self.model.vocab();
        let token = LlamaToken(id);
        (0..self.model.n_vocab()).contains(&id) && !vocab.is_eog(token) && !vocab.is_control(token)
    }
}
