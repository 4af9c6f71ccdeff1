//! Checking a log against its anchors, and single entries against one.

use agora_types::merkle::MerkleProof;
use agora_types::{AccountId, Hash32, LogAnchor};
use serde::{Deserialize, Serialize};

use crate::log::{log_root, SignedLogEntry};

/// What a log that verifies looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReport {
    /// The agent whose log it is.
    pub agent: Option<AccountId>,
    /// Entries in the file.
    pub entries: u64,
    /// Entries the latest anchor covers (the rest are not anchored yet).
    pub anchored: u64,
    /// Anchors checked.
    pub anchors: u64,
}

/// Why a log does not verify: each names the first entry or anchor at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An entry names another agent than the log's.
    #[error("entry {index} is signed as {found}, not the agent {agent}")]
    OtherAgent {
        /// Position in the file.
        index: u64,
        /// The log's agent.
        agent: AccountId,
        /// The one the entry names.
        found: AccountId,
    },
    /// An entry's signature does not verify: its content was edited.
    #[error("entry {index} was edited: its signature does not verify")]
    Edited {
        /// Position in the file.
        index: u64,
    },
    /// An entry carries another position than where it stands.
    #[error("entry {index} says it is entry {seq}: entries were dropped or reordered")]
    OutOfSequence {
        /// Position in the file.
        index: u64,
        /// The sequence it carries.
        seq: u64,
    },
    /// An entry does not name the one before it.
    #[error("entry {index} does not follow entry {}: the log was cut or spliced", index - 1)]
    BrokenChain {
        /// Position in the file.
        index: u64,
    },
    /// An anchor covers more entries than the file has.
    #[error("the anchor at height {height} covers {count} entries but the log has {have}: entries were dropped")]
    Truncated {
        /// The anchor's block.
        height: u64,
        /// Entries it covers.
        count: u64,
        /// Entries in the file.
        have: u64,
    },
    /// The entries an anchor covers do not hash to its root: history was rewritten.
    #[error("the log's first {count} entries do not match the anchor at height {height}: history was rewritten")]
    AnchorMismatch {
        /// The anchor's block.
        height: u64,
        /// Entries it covers.
        count: u64,
    },
    /// An inclusion proof does not lead to the anchor's root.
    #[error("the entry is not in the anchored log: {0}")]
    NotIncluded(&'static str),
}

/// Check `entries` as `agent`'s log against its on-chain `anchors`: every
/// entry signed by the agent, in sequence, naming the one before; every
/// anchor's root and head equal to those of the entries it covers.
pub fn verify_log(
    agent: Option<AccountId>,
    entries: &[SignedLogEntry],
    anchors: &[LogAnchor],
) -> Result<LogReport, VerifyError> {
    let owner = agent.or_else(|| entries.first().map(|e| e.entry.agent));
    let mut prev = Hash32::ZERO;
    for (i, signed) in entries.iter().enumerate() {
        let index = i as u64;
        let e = &signed.entry;
        if let Some(agent) = owner.filter(|a| *a != e.agent) {
            return Err(VerifyError::OtherAgent {
                index,
                agent,
                found: e.agent,
            });
        }
        if !signed.verify() {
            return Err(VerifyError::Edited { index });
        }
        if e.seq != index {
            return Err(VerifyError::OutOfSequence { index, seq: e.seq });
        }
        if e.prev != prev {
            return Err(VerifyError::BrokenChain { index });
        }
        prev = signed.link();
    }
    let have = entries.len() as u64;
    for anchor in anchors {
        if anchor.count > have {
            return Err(VerifyError::Truncated {
                height: anchor.height,
                count: anchor.count,
                have,
            });
        }
        let covered = &entries[..anchor.count as usize];
        let head = covered.last().map(SignedLogEntry::link);
        if log_root(covered) != anchor.root || head != Some(anchor.head) {
            return Err(VerifyError::AnchorMismatch {
                height: anchor.height,
                count: anchor.count,
            });
        }
    }
    Ok(LogReport {
        agent: owner,
        entries: have,
        anchored: anchors.iter().map(|a| a.count).max().unwrap_or(0),
        anchors: anchors.len() as u64,
    })
}

/// Proof that one entry is in the log an anchor covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryProof {
    /// The entry.
    pub entry: SignedLogEntry,
    /// Its Merkle path to the anchor's root.
    pub proof: MerkleProof,
    /// The anchor it is proven against (as recorded on chain).
    pub anchor: LogAnchor,
}

impl EntryProof {
    /// Prove entry `index` of `entries` against `anchor` (`None` if the
    /// anchor does not cover it).
    pub fn new(entries: &[SignedLogEntry], index: usize, anchor: LogAnchor) -> Option<Self> {
        let covered = entries.get(..anchor.count as usize)?;
        let links: Vec<Hash32> = covered.iter().map(SignedLogEntry::link).collect();
        Some(Self {
            entry: covered.get(index)?.clone(),
            proof: MerkleProof::new(&links, index)?,
            anchor,
        })
    }

    /// Check the proof against the anchors recorded on chain for the entry's agent.
    pub fn verify(&self, anchors: &[LogAnchor]) -> Result<(), VerifyError> {
        if !anchors.contains(&self.anchor) {
            return Err(VerifyError::NotIncluded(
                "the anchor is not one the chain recorded for this agent",
            ));
        }
        if !self.entry.verify() {
            return Err(VerifyError::NotIncluded(
                "the entry's signature does not verify",
            ));
        }
        if self.entry.entry.seq != self.proof.index || self.proof.leaf_count != self.anchor.count {
            return Err(VerifyError::NotIncluded(
                "the proof is for another position or log length",
            ));
        }
        if !self.proof.verify(self.entry.link(), self.anchor.root) {
            return Err(VerifyError::NotIncluded(
                "the Merkle path does not lead to the anchor's root",
            ));
        }
        Ok(())
    }
}
