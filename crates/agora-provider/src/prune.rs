//! Transcripts are kept only while the chain can still ask for them: a batch
//! committed at height `h` can be audited until `h + audit_window` and
//! disputed until `h + audit_window + dispute_window`; after that nobody may
//! read its prompts and outputs, so the provider deletes them.

use agora_types::{codec, AuditParams, Height};
use redb::ReadableTable;

use crate::batches::{SealedBatch, SEALED};
use crate::transcripts::TRANSCRIPTS;
use crate::{ProviderError, TranscriptStore};

/// What one pruning pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Committed batches forgotten.
    pub batches: usize,
    /// Transcripts deleted with them.
    pub transcripts: usize,
}

/// The last commit height whose batches no audit or dispute can reach once
/// the chain is at `head` (`None` while every batch still can be).
pub fn prunable_through(head: Height, audit: &AuditParams) -> Option<Height> {
    let kept = audit
        .audit_window_blocks
        .saturating_add(audit.dispute_window_blocks)
        .saturating_add(1);
    head.checked_sub(kept)
}

impl TranscriptStore {
    /// Delete every batch committed (or voucher root settled) at or before
    /// `through` with its transcripts; batches not yet committed and jobs
    /// not yet batched or settled stay.
    pub fn prune_committed_through(&self, through: Height) -> Result<Pruned, ProviderError> {
        let w = self.db.begin_write()?;
        let mut pruned = Pruned::default();
        {
            let mut sealed = w.open_table(SEALED)?;
            let mut old = Vec::new();
            for entry in sealed.iter()? {
                let (root, bytes) = entry?;
                let batch: SealedBatch = codec::decode(bytes.value())
                    .map_err(|e| ProviderError::Corrupt(e.to_string()))?;
                if batch.committed_at.is_some_and(|h| h <= through) {
                    old.push((root.value().to_vec(), batch.jobs));
                }
            }
            {
                let mut transcripts = w.open_table(TRANSCRIPTS)?;
                for (root, jobs) in old {
                    for job in jobs {
                        if transcripts.remove(job.0.as_slice())?.is_some() {
                            pruned.transcripts += 1;
                        }
                    }
                    sealed.remove(root.as_slice())?;
                    pruned.batches += 1;
                }
            }
            crate::paid::prune_paid(&w, through, &mut pruned)?;
        }
        w.commit()?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_kept_through_the_audit_and_dispute_windows() {
        let audit = AuditParams {
            audit_window_blocks: 10,
            dispute_window_blocks: 5,
            ..AuditParams::default()
        };
        // A batch committed at 0 takes verdicts through height 10; a dispute
        // opened at 10 takes votes through 15. At head 15 it must stay.
        assert_eq!(prunable_through(15, &audit), None);
        assert_eq!(prunable_through(16, &audit), Some(0));
        assert_eq!(prunable_through(100, &audit), Some(84));
    }
}
