//! Durable transcripts (receipt, input, prompt and output tokens) in redb,
//! keyed by job id, for audits.

use std::path::Path;

use agora_types::{codec, Hash32, Transcript};
use redb::{Database, TableDefinition};

use crate::ProviderError;

pub(crate) const TRANSCRIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("transcripts");

/// How a finished job's receipt reaches the chain, so that it is committed
/// (and auditable) exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitPath {
    /// In the provider's own receipt batches (`CommitReceipts`).
    Batch,
    /// In the settlement of the payment channel that pays for it (the
    /// caller said so with [`agora_wire::headers::PAYMENT_HEADER`]); never
    /// committed if no voucher for it comes.
    Channel,
}

/// The provider's transcript database.
pub struct TranscriptStore {
    pub(crate) db: Database,
}

impl TranscriptStore {
    /// Open (or create) the database file.
    pub fn open(path: &Path) -> Result<Self, ProviderError> {
        let db = Database::create(path)?;
        let w = db.begin_write()?;
        w.open_table(TRANSCRIPTS)?;
        crate::batches::create_tables(&w)?;
        crate::vouchers::create_tables(&w)?;
        crate::paid::create_tables(&w)?;
        w.commit()?;
        Ok(TranscriptStore { db })
    }

    /// Persist a finished job's transcript durably; a job committed by
    /// batch joins the pending batch in the same transaction.
    pub fn put(&self, t: &Transcript, path: CommitPath) -> Result<(), ProviderError> {
        let w = self.db.begin_write()?;
        w.open_table(TRANSCRIPTS)?.insert(
            t.receipt.receipt.id.0.as_slice(),
            codec::encode(t).as_slice(),
        )?;
        if path == CommitPath::Batch {
            crate::batches::append_pending(&w, &t.receipt.receipt.id)?;
        }
        w.commit()?;
        Ok(())
    }

    /// A transcript by job id.
    pub fn get(&self, id: &Hash32) -> Result<Option<Transcript>, ProviderError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(TRANSCRIPTS)?;
        let Some(bytes) = table.get(id.0.as_slice())? else {
            return Ok(None);
        };
        codec::decode(bytes.value())
            .map(Some)
            .map_err(|e| ProviderError::Corrupt(e.to_string()))
    }
}
