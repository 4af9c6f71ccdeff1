//! The development genesis used by `agora devnet` and a fresh `agora node`.

use std::path::Path;

use agora_ledger::{Genesis, GenesisAccount, Params};
use agora_models::{DEFAULT_MODEL_BLAKE3, DEFAULT_MODEL_LICENSE, DEFAULT_MODEL_NAME};
use agora_types::{AccountId, ModelEntry};
use anyhow::{Context, Result};

/// Chain id of development networks.
pub const DEV_CHAIN_ID: &str = "agora-devnet";
/// Whether `chain_id` names a development or test chain, the only kind on
/// which `agora provider --adversary` may run: the devnet/localnet id, or an
/// id ending in `-devnet`, `-localnet` or `-test`.
pub fn is_development_chain(chain_id: &str) -> bool {
    chain_id == DEV_CHAIN_ID
        || ["-devnet", "-localnet", "-test"]
            .iter()
            .any(|suffix| chain_id.ends_with(suffix))
}

/// Balance each funded development account starts with.
pub const DEV_BALANCE: u64 = 1_000_000_000_000;
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

/// Read `path`, or create a development genesis there funding `funded` and
/// registering the default model.
pub fn load_or_create(path: &Path, funded: &[AccountId]) -> Result<Genesis> {
    load_or_create_with(path, funded, Params::default())
}

/// [`load_or_create`] with the chain parameters a new genesis gets (an
/// existing file keeps its own).
pub fn load_or_create_with(path: &Path, funded: &[AccountId], params: Params) -> Result<Genesis> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Genesis::from_toml(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let genesis = Genesis {
        chain_id: DEV_CHAIN_ID.into(),
        timestamp_ms: 0,
        params,
        accounts: funded
            .iter()
            .map(|id| GenesisAccount {
                id: *id,
                balance: DEV_BALANCE,
            })
            .collect(),
        models: vec![ModelEntry {
            owner: funded
                .first()
                .copied()
                .unwrap_or_else(agora_types::no_owner),
            ..default_model_entry()
        }],
    };
    std::fs::write(path, genesis.to_toml())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(genesis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_development_chains_allow_adversaries() {
        assert!(is_development_chain(DEV_CHAIN_ID));
        assert!(is_development_chain("agora-localnet"));
        assert!(is_development_chain("verify-test"));
        assert!(!is_development_chain("agora-mainnet"));
        assert!(!is_development_chain("agora-devnet-but-not"));
        assert!(!is_development_chain(""));
    }
}
