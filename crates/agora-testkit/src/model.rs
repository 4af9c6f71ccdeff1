//! The real default model (SmolLM2-135M-Instruct, fetched by
//! `scripts/setup.sh` or `agora model fetch`) and one engine per test binary;
//! the real embedding model (all-MiniLM-L6-v2, `agora model fetch
//! --embedding`) and one embedder per test binary.

use std::path::PathBuf;
use std::sync::OnceLock;

use agora_engine::{LlamaEmbedder, LlamaEmbedderConfig, LlamaEngine, LlamaEngineConfig};
use agora_types::Hash32;

/// How every test binary that loads the real model is named
/// (`tests/real_model_*.rs`), so `.config/nextest.toml` finds them by filter.
pub const REAL_MODEL_PREFIX: &str = "real_model_";

/// The default model's path; panics with the fix if it is missing or if the
/// calling test binary is not named `real_model_*`.
pub fn path() -> PathBuf {
    require_real_model_binary();
    let path = agora_models::default_model_path();
    assert!(
        path.is_file(),
        "default model missing at {}; run `scripts/test.sh` or `agora model fetch` first",
        path.display()
    );
    path
}

/// The default model's on-chain id (its BLAKE3), hashed once per binary.
pub fn id() -> Hash32 {
    static ID: OnceLock<Hash32> = OnceLock::new();
    *ID.get_or_init(|| agora_models::model_id(&path()).expect("the default model hashes"))
}

/// The engine settings tests start from: 2 threads (the CI machine's cores),
/// a 512-token context, 4 sequences and 8 queued jobs; tests that need other
/// limits override fields (`LlamaEngineConfig { max_sequences: 1, ..config() }`).
pub fn config() -> LlamaEngineConfig {
    LlamaEngineConfig {
        threads: 2,
        context_length: 512,
        max_sequences: 4,
        queue_capacity: 8,
        ..LlamaEngineConfig::default()
    }
}

/// Load the default model with `config`.
pub fn load(config: LlamaEngineConfig) -> LlamaEngine {
    LlamaEngine::load(&path(), config).expect("the default model loads")
}

/// One engine with [`config`] shared by every test of a binary (loading
/// costs about 0.2 s and 100 MB each time).
pub fn shared_engine() -> &'static LlamaEngine {
    static ENGINE: OnceLock<LlamaEngine> = OnceLock::new();
    ENGINE.get_or_init(|| load(config()))
}

/// The embedding model's path, checked against its pinned hashes; panics
/// with the fix if it is missing or if the calling test binary is not named
/// `real_model_*`.
pub fn embedding_path() -> PathBuf {
    require_real_model_binary();
    let path = agora_models::embedding_model_path();
    assert!(
        path.is_file(),
        "embedding model missing at {}; run `scripts/test.sh` or `agora model fetch --embedding` first",
        path.display()
    );
    agora_models::verify_embedding_model(&path).expect("the embedding model is the pinned one");
    path
}

/// One two-thread embedder shared by every test of a binary.
pub fn shared_embedder() -> &'static LlamaEmbedder {
    static EMBEDDER: OnceLock<LlamaEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let config = LlamaEmbedderConfig {
            threads: 2,
            queue_capacity: 8,
        };
        LlamaEmbedder::load(&embedding_path(), config).expect("the embedding model loads")
    })
}

/// Panic unless the running test binary's name starts with
/// [`REAL_MODEL_PREFIX`]; tests that only start the `agora` binary (which
/// loads the model itself) call it too.
pub fn require_real_model_binary() {
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        is_real_model_binary(name),
        "{name} loads the real model but its test file is not named `{REAL_MODEL_PREFIX}*.rs`; \
         rename it so nextest runs it alone (see .config/nextest.toml)"
    );
}

/// Whether a test executable's file name follows the real-model pattern
/// (cargo names it after the test file, plus `-HASH`).
fn is_real_model_binary(file_name: &str) -> bool {
    file_name.starts_with(REAL_MODEL_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_matches_cargo_test_binary_names() {
        assert!(is_real_model_binary("real_model_llama-0123abcd"));
        assert!(!is_real_model_binary("llama-0123abcd"));
        assert!(!is_real_model_binary("agora_testkit-0123abcd"));
    }

    #[test]
    #[should_panic(expected = "not named `real_model_")]
    fn a_binary_outside_the_pattern_is_refused_the_model() {
        path();
    }
}
