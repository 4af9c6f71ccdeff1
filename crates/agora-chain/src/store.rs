//! Durable storage in redb: blocks by height, the latest state, the genesis
//! hash and a transaction index, all written in one transaction per block so
//! a crash (even `kill -9`) leaves either the old or the new head, never a mix.

use std::path::Path;

use agora_ledger::State;
use agora_types::{codec, Block, Hash32, Height};
use redb::{Database, TableDefinition};

use crate::ChainError;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const TX_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("tx_index");
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

    /// Persist a block and the state after it, atomically and durably.
    pub fn commit_block(&self, block: &Block, state: &State) -> Result<(), ChainError> {
        let w = self.db.begin_write()?;
        {
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

    /// Height of the block that committed a transaction.
    pub fn tx_height(&self, id: &Hash32) -> Result<Option<Height>, ChainError> {
        let r = self.db.begin_read()?;
        let index = r.open_table(TX_INDEX)?;
        Ok(index.get(id.0.as_slice())?.map(|v| v.value()))
    }
}
