//! The default model's registry entry, as a development genesis registers it
//! and as a provider serving the default file claims it.

use std::path::Path;

use agora_types::{Hash32, ModelEntry};

use crate::{
    ModelError, DEFAULT_MODEL_BLAKE3, DEFAULT_MODEL_LICENSE, DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_TOKENIZER_HASH,
};

/// Size of the default model file in bytes.
const DEFAULT_MODEL_SIZE: u64 = 98_362_432;

/// The default model's registry entry, from its pinned hash.
pub fn default_model_entry() -> ModelEntry {
    ModelEntry {
        id: DEFAULT_MODEL_BLAKE3
            .parse()
            .expect("pinned BLAKE3 is valid hex"),
        name: DEFAULT_MODEL_NAME.into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: DEFAULT_MODEL_SIZE,
        license: DEFAULT_MODEL_LICENSE.into(),
        // Whoever registers it owns it (the provider sets itself when it
        // registers the model; genesis names the first funded account).
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
        tokenizer_hash: DEFAULT_MODEL_TOKENIZER_HASH
            .parse()
            .expect("pinned tokenizer hash is valid hex"),
    }
}

/// The registry entry describing the GGUF file at `path`, whose id (its
/// BLAKE3) is `id`: architecture, quantization, licence (`unknown` if the
/// file names none) and tokenizer hash from its header, its size, and
/// `name` (default: the file stem, lower-cased). The default model's file
/// gets the default entry. Owner and royalty are left to the registrant.
pub fn entry_for(path: &Path, id: Hash32, name: Option<String>) -> Result<ModelEntry, ModelError> {
    if id.to_hex() == DEFAULT_MODEL_BLAKE3 {
        return Ok(default_model_entry());
    }
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size_bytes = std::fs::metadata(path).map_err(io)?.len();
    let meta = crate::gguf::read_meta(path).map_err(|source| ModelError::Gguf {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    Ok(ModelEntry {
        id,
        name: name.unwrap_or_else(|| stem.to_lowercase()),
        architecture: meta.architecture,
        quantization: meta.quantization,
        size_bytes,
        license: meta.license.unwrap_or_else(|| "unknown".into()),
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
        tokenizer_hash: meta.tokenizer_hash,
    })
}
