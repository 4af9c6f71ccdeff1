//! Durable storage in redb: blocks by height, the latest state, the genesis
//! hash, a transaction index and each block's finality certificate and
//! randomness, all written in one transaction per block so
//! a crash (even `kill -9`) leaves either the old or the new head, never a mix.

use std::path::Path;

use agora_ledger::State;
use agora_types::{codec, Block, Hash32, Height};
use redb::{Database, TableDefinition};

use crate::{ChainError, Finality};

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const TX_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("tx_index");
const RANDOMNESS: TableDefinition<u64, &[u8]> = TableDefinition::new("randomness");
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
const STATE_KEY: &str = "state";
const GENESIS_KEY: &str = "genesis_hash";

/// The node's database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Open (or create) the database file.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let db = Database::create(path)?;
        let w = db.begin_write()?;
        w.open_table(BLOCKS)?;
        w.open_table(META)?;
        w.open_table(TX_INDEX)?;
        w.open_table(RANDOMNESS)?;
        w.open_table(CERTIFICATES)?;
        w.commit()?;
        Ok(Store { db })
    }

    /// The genesis hash and latest state, if the chain was initialised.
    pub fn load(&self) -> Result<Option<(Hash32, State)>, ChainError> {
        let r = self.db.begin_read()?;
        let meta = r.open_table(META)?;
        let genesis = meta.get(GENESIS_KEY)?.map(|v| v.value().to_vec());
        let state = meta.get(STATE_KEY)?.map(|v| v.value().to_vec());
        match (genesis, state) {
            (Some(g), Some(s)) => {
                let g = codec::decode(&g).map_err(|e| ChainError::Corrupt(e.to_string()))?;
                let s = codec::decode(&s).map_err(|e| ChainError::Corrupt(e.to_string()))?;
                Ok(Some((g, s)))
            }
            (None, None) => Ok(None),
            _ => Err(ChainError::Corrupt(
                "genesis hash and state must be stored together".into(),
            )),
        }
    }

    /// Record the genesis state.
    pub fn init(&self, genesis_hash: Hash32, state: &State) -> Result<(), ChainError> {
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            meta.insert(GENESIS_KEY, codec::encode(&genesis_hash).as_slice())?;
            meta.insert(STATE_KEY, codec::encode(state).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// Persist a block, the state after it and its finality, atomically and durably.
    pub fn commit_block(
        &self,
        block: &Block,
        state: &State,
        finality: &Finality,
    ) -> Result<(), ChainError> {
        let w = self.db.begin_write()?;
        {
            let height = block.header.height;
            if let Some(r) = &finality.randomness {
                w.open_table(RANDOMNESS)?.insert(height, r.as_slice())?;
            }
            if let Some(c) = &finality.certificate {
                w.open_table(CERTIFICATES)?.insert(height, c.as_slice())?;
            }
            let mut blocks = w.open_table(BLOCKS)?;
            blocks.insert(block.header.height, codec::encode(block).as_slice())?;
            let mut index = w.open_table(TX_INDEX)?;
            for tx in &block.txs {
                index.insert(tx.id().0.as_slice(), block.header.height)?;
            }
            let mut meta = w.open_table(META)?;
            meta.insert(STATE_KEY, codec::encode(state).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// A block by height.
    pub fn block(&self, height: Height) -> Result<Option<Block>, ChainError> {
        let r = self.db.begin_read()?;
        let blocks = r.open_table(BLOCKS)?;
        let Some(bytes) = blocks.get(height)? else {
            return Ok(None);
        };
        codec::decode(bytes.value())
            .map(Some)
            .map_err(|e| ChainError::Corrupt(e.to_string()))
    }

    /// The randomness and certificate stored with the block at `height`
    /// (`None` if there is no such block).
    pub fn finality(&self, height: Height) -> Result<Option<Finality>, ChainError> {
        let r = self.db.begin_read()?;
        if r.open_table(BLOCKS)?.get(height)?.is_none() {
            return Ok(None);
        }
        let randomness = match r.open_table(RANDOMNESS)?.get(height)? {
            Some(v) => Some(
                <[u8; 32]>::try_from(v.value())
                    .map_err(|_| ChainError::Corrupt(format!("randomness at {height}")))?,
            ),
            None => None,
        };
        let certificate = r
            .open_table(CERTIFICATES)?
            .get(height)?
            .map(|v| v.value().to_vec());
        Ok(Some(Finality {
            randomness,
            certificate,
        }))
    }

    /// Height of the block that committed a transaction.
    pub fn tx_height(&self, id: &Hash32) -> Result<Option<Height>, ChainError> {
        let r = self.db.begin_read()?;
        let index = r.open_table(TX_INDEX)?;
        Ok(index.get(id.0.as_slice())?.map(|v| v.value()))
    }

    /// [`Store::tx_height`] for several transactions, in one read transaction.
    pub fn tx_heights(&self, ids: &[Hash32]) -> Result<Vec<Option<Height>>, ChainError> {
        let r = self.db.begin_read()?;
        let index = r.open_table(TX_INDEX)?;
        ids.iter()
            .map(|id| Ok(index.get(id.0.as_slice())?.map(|v| v.value())))
            .collect()
    }
}
