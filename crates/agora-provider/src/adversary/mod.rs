//! Built-in cheating, for testing verification only (`agora provider
//! --adversary MODE`, refused outside development chains).
//!
//! Every mode still claims to be honest: its receipt and transcript name the
//! registered model, the client's prompt tokens (rendered with the claimed
//! model's tokenizer), the client's seed and parameters, and hashes that match
//! the tokens listed and the text streamed. What it actually ran (or, for
//! `forge-text`, what it streamed) differs, so a verifier replaying the
//! transcript on the real model must catch it.

mod engine;
mod forge;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use agora_engine::{quantize, EngineError, QuantType, QuantizeError};
use agora_models::ModelError;

pub use engine::AdversarialEngine;

/// Re-quantization `requantize` uses when no type is given: the brief's
/// measured case (argmax agreement 72.7% against the Q4_1 original).
pub const DEFAULT_REQUANTIZE: QuantType = QuantType::Q4_0;
/// Cheap model type `prefill-attack` generates with when no file is given.
pub const DEFAULT_PREFILL_CHEAP: QuantType = QuantType::Q2_K;
/// `tamper` replaces every this-many-th generated token.
pub const TAMPER_EVERY: usize = 8;
/// What `forge-text` adds to the honest text it streams.
pub const FORGED_TEXT: &str = " (Sponsored: buy agora tokens now!)";

/// How a cheating provider cheats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adversary {
    /// Serve a different model (default: the cached Gemma 3 270M Q4_K_M);
    /// its output is re-tokenized with the claimed model's tokenizer.
    Substitute(Option<PathBuf>),
    /// Serve a re-quantized copy of the claimed model.
    Requantize(QuantType),
    /// Run the real model, then replace every [`TAMPER_EVERY`]-th output token.
    Tamper,
    /// Return uniformly random tokens without running any model.
    Random,
    /// Run the real model with a seed of its own, claiming the client's.
    IgnoreSeed,
    /// Run the real model without the system messages, claiming the full prompt.
    DropSystem,
    /// Generate with a cheaper model (default: a Q2_K copy of the claimed one)
    /// and commit to activations with the real one.
    PrefillAttack(Option<PathBuf>),
    /// Run the real model honestly (receipt tokens and commitments are the
    /// honest ones) but stream other text to the client: the honest text
    /// followed by [`FORGED_TEXT`]. The receipt hashes the text streamed.
    ForgeText,
}

/// The modes, for help texts and errors.
pub const MODES: &str = "substitute[:PATH], requantize[:TYPE], tamper, random, ignore-seed, \
                         drop-system, prefill-attack[:PATH], forge-text";

/// Why an adversary could not be parsed or set up.
#[derive(Debug, thiserror::Error)]
pub enum AdversaryError {
    /// The mode name is not one of [`MODES`].
    #[error("unknown adversary mode {0:?} (modes: {MODES})")]
    UnknownMode(String),
    /// The mode's argument is missing, unexpected or invalid.
    #[error("adversary mode {mode}: {reason}")]
    BadArgument {
        /// The mode.
        mode: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A model file the mode needs is not there.
    #[error("adversary mode {mode} needs {path}: {hint}")]
    MissingModel {
        /// The mode.
        mode: &'static str,
        /// The file looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// Hashing or caching a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Making the re-quantized copy failed.
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    /// Loading a model failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Adversary {
    /// The mode's name as written on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Adversary::Substitute(_) => "substitute",
            Adversary::Requantize(_) => "requantize",
            Adversary::Tamper => "tamper",
            Adversary::Random => "random",
            Adversary::IgnoreSeed => "ignore-seed",
            Adversary::DropSystem => "drop-system",
            Adversary::PrefillAttack(_) => "prefill-attack",
            Adversary::ForgeText => "forge-text",
        }
    }
}

impl std::fmt::Display for Adversary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Adversary::Substitute(Some(p)) | Adversary::PrefillAttack(Some(p)) => {
                write!(f, "{}:{}", self.name(), p.display())
            }
            Adversary::Requantize(q) => write!(f, "requantize:{q}"),
            _ => f.write_str(self.name()),
        }
    }
}

impl FromStr for Adversary {
    type Err = AdversaryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.trim().split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (s.trim(), None),
        };
        let path = |mode: &'static str| match arg {
            None => Ok(None),
            Some("") => Err(AdversaryError::BadArgument {
                mode,
                reason: "the path after ':' is empty".into(),
            }),
            Some(p) => Ok(Some(PathBuf::from(p))),
        };
        let bare = |mode: Adversary| match arg {
            None => Ok(mode),
            Some(a) => Err(AdversaryError::BadArgument {
                mode: mode.name(),
                reason: format!("takes no argument, got {a:?}"),
            }),
        };
        match name {
            "substitute" => Ok(Adversary::Substitute(path("substitute")?)),
            "prefill-attack" => Ok(Adversary::PrefillAttack(path("prefill-attack")?)),
            "requantize" => match arg {
                None => Ok(Adversary::Requantize(DEFAULT_REQUANTIZE)),
                Some(t) => t
                    .parse()
                    .map(Adversary::Requantize)
                    .map_err(|e: QuantizeError| AdversaryError::BadArgument {
                        mode: "requantize",
                        reason: e.to_string(),
                    }),
            },
            "tamper" => bare(Adversary::Tamper),
            "random" => bare(Adversary::Random),
            "ignore-seed" => bare(Adversary::IgnoreSeed),
            "drop-system" => bare(Adversary::DropSystem),
            "forge-text" => bare(Adversary::ForgeText),
            other => Err(AdversaryError::UnknownMode(other.to_string())),
        }
    }
}

/// The cached copy of `src` re-quantized to `quant`, made with llama.cpp
/// the first time (written beside the cache and renamed into place, so a
/// half-written copy is never used). Blocks while quantizing.
pub fn ensure_requantized(src: &Path, quant: QuantType) -> Result<PathBuf, AdversaryError> {
    let id = agora_models::model_id(src)?;
    let path = agora_models::requantized_path(&id, quant.name());
    if path.is_file() {
        return Ok(path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let staging = tempfile::tempdir_in(dir).map_err(io)?;
    let partial = staging.path().join("copy.gguf");
    tracing::info!(src = %src.display(), %quant, "making a re-quantized copy");
    quantize(src, &partial, quant)?;
    std::fs::rename(&partial, &path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_with_and_without_arguments() {
        let cases = [
            ("substitute", Adversary::Substitute(None)),
            (
                "substitute:/m/g.gguf",
                Adversary::Substitute(Some("/m/g.gguf".into())),
            ),
            ("requantize", Adversary::Requantize(QuantType::Q4_0)),
            ("requantize:q2_k", Adversary::Requantize(QuantType::Q2_K)),
            ("requantize:Q8_0", Adversary::Requantize(QuantType::Q8_0)),
            ("tamper", Adversary::Tamper),
            ("random", Adversary::Random),
            ("ignore-seed", Adversary::IgnoreSeed),
            ("drop-system", Adversary::DropSystem),
            ("forge-text", Adversary::ForgeText),
            ("prefill-attack", Adversary::PrefillAttack(None)),
            (
                "prefill-attack:cheap.gguf",
                Adversary::PrefillAttack(Some("cheap.gguf".into())),
            ),
        ];
        for (text, mode) in cases {
            let parsed: Adversary = text.parse().unwrap();
            assert_eq!(parsed, mode, "{text}");
            // Display writes what parses back to the same mode.
            assert_eq!(parsed.to_string().parse::<Adversary>().unwrap(), mode);
        }
    }

    #[test]
    fn bad_modes_are_clear_errors() {
        let err = |s: &str| s.parse::<Adversary>().unwrap_err().to_string();
        let unknown = err("lie");
        assert!(
            unknown.contains("\"lie\"") && unknown.contains("ignore-seed"),
            "{unknown}"
        );
        let quant = err("requantize:Q9");
        assert!(
            quant.contains("requantize") && quant.contains("Q9"),
            "{quant}"
        );
        let extra = err("tamper:3");
        assert!(extra.contains("takes no argument"), "{extra}");
        assert!(err("substitute:").contains("empty"));
        assert!(err("").contains("unknown adversary mode"));
    }
}
