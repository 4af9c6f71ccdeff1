//! Acceptance thresholds of the replay check, calibrated per model.
//!
//! They live off chain, in a [`ThresholdBook`] (a JSON map from model id to
//! [`Thresholds`]) that validators load next to the model registry: the
//! registry's `ModelEntry` is ledger state, which holds no floats, and the
//! thresholds are a validator-side policy derived by `agora verify
//! calibrate`, not consensus data.

use std::collections::BTreeMap;
use std::path::Path;

use agora_types::ModelId;
use serde::{Deserialize, Serialize};

/// When a job passes. Every bound is inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Least share of output tokens the seeded replay must reproduce exactly.
    pub min_token_match_rate: f64,
    /// Largest replay margin (see `agora_engine::sampling::Replayed`) of any one token.
    pub max_token_margin: f64,
    /// Largest mean replay margin over a job's tokens.
    pub max_mean_margin: f64,
    /// Largest share of a chunk's top-k indices whose committed value has another sign or exponent.
    pub max_exponent_mismatch_rate: f64,
    /// Largest mean mantissa difference (f16 ulps) of a chunk's matched indices.
    pub max_mean_mantissa_diff: f64,
    /// Fail jobs whose receipt carries no commitments.
    pub require_commitments: bool,
}

impl Default for Thresholds {
    /// Calibrated on SmolLM2-135M-Instruct Q4_1 (see docs/benchmarks.md,
    /// "Verification"); a fallback for models without their own entry.
    fn default() -> Self {
        Thresholds {
            min_token_match_rate: 0.9,
            max_token_margin: 2.0,
            max_mean_margin: 0.1,
            max_exponent_mismatch_rate: 0.15,
            max_mean_mantissa_diff: 8.0,
            require_commitments: true,
        }
    }
}

/// Thresholds per model, stored as JSON (`{"<model id hex>": Thresholds}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdBook {
    /// Model id (hex) → its calibrated thresholds.
    pub models: BTreeMap<String, Thresholds>,
}

/// Why a threshold book could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a threshold book.
    #[error("{path}: not a threshold book: {source}")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
}

impl ThresholdBook {
    /// Read a book; a missing file is an empty book.
    pub fn load(path: &Path) -> Result<Self, BookError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(BookError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|source| BookError::Format {
            path: path.display().to_string(),
            source,
        })
    }

    /// Write the book as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), BookError> {
        let text = serde_json::to_string_pretty(self).expect("thresholds always serialize");
        std::fs::write(path, text).map_err(|source| BookError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The thresholds of `model`, if calibrated.
    pub fn get(&self, model: &ModelId) -> Option<Thresholds> {
        self.models.get(&model.to_hex()).copied()
    }

    /// Record `thresholds` for `model`.
    pub fn insert(&mut self, model: &ModelId, thresholds: Thresholds) {
        self.models.insert(model.to_hex(), thresholds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::Hash32;

    #[test]
    fn books_round_trip_through_files() {
        let dir = std::env::temp_dir().join(format!("agora-verify-book-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("thresholds.json");
        assert_eq!(
            ThresholdBook::load(&path).unwrap(),
            ThresholdBook::default()
        );
        let mut book = ThresholdBook::default();
        let model = Hash32::digest(b"model");
        book.insert(&model, Thresholds::default());
        book.save(&path).unwrap();
        let back = ThresholdBook::load(&path).unwrap();
        assert_eq!(back.get(&model), Some(Thresholds::default()));
        assert_eq!(back.get(&Hash32::digest(b"other")), None);
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(matches!(
            ThresholdBook::load(&path),
            Err(BookError::Format { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
