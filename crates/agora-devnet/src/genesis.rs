//! The development genesis used by `agora devnet` and a fresh `agora node`.

use std::path::Path;

use agora_ledger::{Genesis, GenesisAccount, Params};
use agora_models::default_model_entry;
use agora_tasks::{Context, Failure};
use agora_types::network::DEV_CHAIN_ID;
use agora_types::{AccountId, ModelEntry};

/// Balance each funded development account starts with.
pub const DEV_BALANCE: u64 = 1_000_000_000_000;

/// Read `path`, or create a development genesis there funding `funded` and
/// registering the default model.
pub fn load_or_create(path: &Path, funded: &[AccountId]) -> Result<Genesis, Failure> {
    load_or_create_with(path, funded, Params::default())
}

/// [`load_or_create`] with the chain parameters a new genesis gets (an
/// existing file keeps its own).
pub fn load_or_create_with(
    path: &Path,
    funded: &[AccountId],
    params: Params,
) -> Result<Genesis, Failure> {
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
