//! Genesis: the initial state, read from a TOML file.

use std::collections::BTreeMap;

use agora_types::{codec, AccountId, Amount, Hash32, ModelEntry};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Account, GenesisError, Params, State};

const GENESIS_DOMAIN: &str = "agora 2026 genesis v1";

/// An initial balance.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisAccount {
    /// Account key (hex).
    pub id: AccountId,
    /// Initial balance in base units.
    pub balance: Amount,
}

/// Everything needed to build the state at height 0.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    /// Chain name; transactions and blocks carry it.
    pub chain_id: String,
    /// Genesis time, milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Chain parameters.
    #[serde(default)]
    pub params: Params,
    /// Initial balances.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Initially registered models.
    #[serde(default)]
    pub models: Vec<ModelEntry>,
}

impl Genesis {
    /// Parse a genesis TOML document.
    pub fn from_toml(text: &str) -> Result<Self, GenesisError> {
        toml::from_str(text).map_err(|e| GenesisError::Parse(e.to_string()))
    }

    /// Render as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("genesis fields are all representable in TOML")
    }

    /// The genesis hash, which the first block names as its parent.
    pub fn hash(&self) -> Hash32 {
        Hash32::digest_in(GENESIS_DOMAIN, &codec::encode(self))
    }

    /// The state at height 0.
    pub fn state(&self) -> Result<State, GenesisError> {
        if self.chain_id.is_empty() {
            return Err(GenesisError::Invalid("chain_id is empty".into()));
        }
        let mut accounts = BTreeMap::new();
        for a in &self.accounts {
            if accounts
                .insert(
                    a.id,
                    Account {
                        balance: a.balance,
                        nonce: 0,
                    },
                )
                .is_some()
            {
                return Err(GenesisError::Invalid(format!(
                    "account {} listed twice",
                    a.id
                )));
            }
        }
        let supply: u128 = self.accounts.iter().map(|a| u128::from(a.balance)).sum();
        if supply > u128::from(u64::MAX) {
            return Err(GenesisError::Invalid(
                "total supply overflows 64 bits".into(),
            ));
        }
        let mut models = BTreeMap::new();
        for m in &self.models {
            if m.royalty_ppm > self.params.max_royalty_ppm {
                return Err(GenesisError::Invalid(format!(
                    "model {} asks a royalty of {} ppm, above max_royalty_ppm {}",
                    m.id, m.royalty_ppm, self.params.max_royalty_ppm
                )));
            }
            if models.insert(m.id, m.clone()).is_some() {
                return Err(GenesisError::Invalid(format!(
                    "model {} listed twice",
                    m.id
                )));
            }
        }
        Ok(State {
            chain_id: self.chain_id.clone(),
            height: 0,
            last_block_id: self.hash(),
            last_timestamp_ms: self.timestamp_ms,
            params: self.params.clone(),
            accounts,
            models,
            providers: BTreeMap::new(),
            channels: BTreeMap::new(),
            validators: BTreeMap::new(),
            delegations: BTreeMap::new(),
            unbonding: Vec::new(),
            burned: 0,
            emission_pool: 0,
            emitted: 0,
            batches: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            disputes: BTreeMap::new(),
            provider_audits: BTreeMap::new(),
            earnings: BTreeMap::new(),
            markets: Default::default(),
            validator_endpoints: BTreeMap::new(),
            committee: Default::default(),
            batches_in_block: (0, 0),
            datasets: BTreeMap::new(),
            algorithms: BTreeMap::new(),
            data_jobs: BTreeMap::new(),
            data_batches: BTreeMap::new(),
            agents: BTreeMap::new(),
            agent_payments: BTreeMap::new(),
            feedback: BTreeMap::new(),
            validation_requests: BTreeMap::new(),
        })
    }
}
