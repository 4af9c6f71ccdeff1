//! The keys' durable home: one redb file holding key records (hashes,
//! limits, spend), the custodial accounts' signing seeds, and usage rows.
//! Records are JSON so an operator can read a dump; secrets never enter it.

use std::path::Path;

use agora_types::{AccountId, Hash32, Keypair};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::limits::{Limits, Spend};
use crate::KeysError;

/// Key hash → JSON [`KeyRecord`].
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keys");
/// Account id → the 32-byte seed of its signing key.
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
/// `key_id/day/model` → JSON [`UsageRow`].
const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");

/// One API key as stored: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public id ([`crate::public_id`]).
    pub id: String,
    /// The hash its secret must match.
    pub hash: Hash32,
    /// A label chosen by its creator.
    pub name: String,
    /// The on-chain account it spends from.
    pub account: AccountId,
    /// Its budgets and rate limits.
    pub limits: Limits,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// A revoked key is refused for good.
    pub revoked: bool,
    /// What it has spent.
    pub spend: Spend,
    /// The wallet that asked for it through `POST /v1/keys` (its account
    /// then belongs to that wallet); `None` for keys an operator issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<AccountId>,
}

/// Usage of one key for one model on one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The key's public id.
    pub key: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The model's name.
    pub model: String,
    /// Requests that were charged.
    pub requests: u64,
    /// Prompt tokens charged.
    pub prompt_tokens: u64,
    /// Completion tokens charged.
    pub completion_tokens: u64,
    /// Total cost charged, in base units.
    pub cost: u64,
}

impl UsageRow {
    fn slot(&self) -> String {
        format!("{}/{}/{}", self.key, self.day, self.model)
    }

    /// Add another row's counts to this one.
    pub fn absorb(&mut self, other: &UsageRow) {
        self.requests = self.requests.saturating_add(other.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.cost = self.cost.saturating_add(other.cost);
    }
}

/// The redb file behind a [`crate::KeyBook`].
pub struct Store {
    db: Database,
}

fn corrupt(e: impl std::fmt::Display) -> KeysError {
    KeysError::Corrupt(e.to_string())
}

impl Store {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, KeysError> {
        // It holds the accounts' signing seeds: owner-only from the start
        // (redb initialises an empty file as a new database).
        if !path.exists() {
            agora_tasks::write_private(path, b"").map_err(|e| KeysError::Store(e.to_string()))?;
        }
        Self::init(Database::create(path)?)
    }

    /// A store held in memory only (for tests and throwaway gateways).
    pub fn in_memory() -> Result<Self, KeysError> {
        let backend = redb::backends::InMemoryBackend::new();
        Self::init(Database::builder().create_with_backend(backend)?)
    }

    fn init(db: Database) -> Result<Self, KeysError> {
        let w = db.begin_write()?;
        w.open_table(KEYS)?;
        w.open_table(ACCOUNTS)?;
        w.open_table(USAGE)?;
        w.commit()?;
        Ok(Store { db })
    }

    /// Every key record.
    pub fn keys(&self) -> Result<Vec<KeyRecord>, KeysError> {
        let r = self.db.begin_read()?;
        let mut out = Vec::new();
        for entry in r.open_table(KEYS)?.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Every custodial account's signing key.
    pub fn accounts(&self) -> Result<Vec<Keypair>, KeysError> {
        let r = self.db.begin_read()?;
        let mut out = Vec::new();
        for entry in r.open_table(ACCOUNTS)?.iter()? {
            let (_, v) = entry?;
            let seed: [u8; 32] = v.value().try_into().map_err(corrupt)?;
            out.push(Keypair::from_seed(seed));
        }
        Ok(out)
    }

    /// Keep `key`'s signing seed.
    pub fn put_account(&self, key: &Keypair) -> Result<(), KeysError> {
        let w = self.db.begin_write()?;
        w.open_table(ACCOUNTS)?
            .insert(key.account().0.as_slice(), key.seed().as_slice())?;
        w.commit()?;
        Ok(())
    }

    /// Write `records` and add `usage` to the stored rows, in one transaction.
    pub fn write(&self, records: &[KeyRecord], usage: &[UsageRow]) -> Result<(), KeysError> {
        let w = self.db.begin_write()?;
        {
            let mut keys = w.open_table(KEYS)?;
            for record in records {
                let json = serde_json::to_vec(record).map_err(corrupt)?;
                keys.insert(record.hash.0.as_slice(), json.as_slice())?;
            }
            let mut rows = w.open_table(USAGE)?;
            for row in usage {
                let slot = row.slot();
                let mut stored = match rows.get(slot.as_str())? {
                    Some(v) => serde_json::from_slice(v.value()).map_err(corrupt)?,
                    None => UsageRow {
                        key: row.key.clone(),
                        day: row.day.clone(),
                        model: row.model.clone(),
                        ..UsageRow::default()
                    },
                };
                stored.absorb(row);
                let json = serde_json::to_vec(&stored).map_err(corrupt)?;
                rows.insert(slot.as_str(), json.as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }

    /// Usage rows of the key with public id `key` (every key's if `None`).
    pub fn usage(&self, key: Option<&str>) -> Result<Vec<UsageRow>, KeysError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(USAGE)?;
        let mut out = Vec::new();
        let rows: Box<dyn Iterator<Item = _>> = match key {
            Some(k) => {
                let (lo, hi) = (format!("{k}/"), format!("{k}0"));
                Box::new(table.range(lo.as_str()..hi.as_str())?)
            }
            None => Box::new(table.iter()?),
        };
        for entry in rows {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }
}
