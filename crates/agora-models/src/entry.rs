//! The default model's registry entry, as a development genesis registers it
//! and as a provider serving the default file claims it.

use agora_types::ModelEntry;

use crate::{DEFAULT_MODEL_BLAKE3, DEFAULT_MODEL_LICENSE, DEFAULT_MODEL_NAME};

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
    }
}
