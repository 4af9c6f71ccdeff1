//! Durable transcripts (receipt, input, prompt and output tokens) in redb,
//! keyed by job id, for audits.

use std::path::Path;

use agora_types::{codec, Hash32, Transcript};
use redb::{Database, TableDefinition};

use crate::ProviderError;

pub(crate) const TRANSCRIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("transcripts");

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
        w.commit()?;
        Ok(TranscriptStore { db })
    }

    /// Persist a finished job's transcript durably, queuing the job for the
    /// next receipt batch in the same transaction.
    pub fn put(&self, t: &Transcript) -> Result<(), ProviderError> {
        let w = self.db.begin_write()?;
        w.open_table(TRANSCRIPTS)?.insert(
            t.receipt.receipt.id.0.as_slice(),
            codec::encode(t).as_slice(),
        )?;
        crate::batches::append_pending(&w, &t.receipt.receipt.id)?;
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
