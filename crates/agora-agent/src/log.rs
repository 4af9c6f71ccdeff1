//! The action log: signed entries, each naming its sequence number and the
//! link hash of the entry before it, kept one JSON object per line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agora_types::{codec, merkle, AccountId, Hash32, Keypair, LogAnchor, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Domain of the bytes an agent signs for an entry.
const LOG_ENTRY_DOMAIN: &str = "agora 2026 agent log entry v1";
/// Domain of an entry's link hash (what the next entry and the Merkle tree use).
const LOG_LINK_DOMAIN: &str = "agora 2026 agent log link v1";

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read or written.
    #[error("log file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not an entry.
    #[error("log line {line} is not a signed entry: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The log belongs to another agent than the key appending to it.
    #[error("the log belongs to {owner}, not {key}")]
    NotOwner {
        /// Who signed its entries.
        owner: AccountId,
        /// The key offered.
        key: AccountId,
    },
}

/// One action an agent took.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LogEntry {
    /// The agent (its account signs the entry).
    pub agent: AccountId,
    /// Position in the log, from 0.
    pub seq: u64,
    /// Link hash of the entry before (zero for the first).
    pub prev: Hash32,
    /// When, in milliseconds since the Unix epoch, as the agent says.
    pub time_ms: u64,
    /// What it did, in a word (`summarise`, `pay`, `anchor`).
    pub action: String,
    /// Free detail (JSON, text).
    pub detail: String,
    /// Receipts (job or payment ids) of what it paid for in this action.
    pub receipts: Vec<Hash32>,
}

impl LogEntry {
    /// The bytes the agent signs.
    pub fn signing_bytes(&self) -> [u8; 32] {
        Hash32::digest_in(LOG_ENTRY_DOMAIN, &codec::encode(self)).0
    }

    /// Sign as `agent`.
    pub fn sign(self, agent: &Keypair) -> SignedLogEntry {
        let signature = agent.sign(&self.signing_bytes());
        SignedLogEntry {
            entry: self,
            signature,
        }
    }
}

/// An entry with its agent's signature: one line of the log file.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedLogEntry {
    /// The entry.
    pub entry: LogEntry,
    /// The agent's signature over [`LogEntry::signing_bytes`].
    pub signature: Signature,
}

impl SignedLogEntry {
    /// Whether the agent it names signed it.
    pub fn verify(&self) -> bool {
        self.entry
            .agent
            .verify(&self.entry.signing_bytes(), &self.signature)
            .is_ok()
    }

    /// Its link hash: what the next entry names as `prev` and the Merkle
    /// tree's leaf (it covers the signature too).
    pub fn link(&self) -> Hash32 {
        Hash32::digest_in(LOG_LINK_DOMAIN, &codec::encode(self))
    }
}

/// The Merkle root over the link hashes of `entries`: what an anchor records.
pub fn log_root(entries: &[SignedLogEntry]) -> Hash32 {
    let links: Vec<Hash32> = entries.iter().map(SignedLogEntry::link).collect();
    merkle::root(&links)
}

/// Read a log file (one signed entry per line; a missing file is empty).
pub fn read_log(path: &Path) -> Result<Vec<SignedLogEntry>, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LogError::Io {
                path: path.into(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| LogError::Malformed {
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// An agent's own log: appends signed, chained entries to its file.
pub struct AgentLog {
    path: PathBuf,
    key: Keypair,
    entries: Vec<SignedLogEntry>,
}

impl AgentLog {
    /// Open (or start) the log at `path`, written by `key`.
    pub fn open(path: &Path, key: Keypair) -> Result<Self, LogError> {
        let entries = read_log(path)?;
        if let Some(first) = entries.first() {
            if first.entry.agent != key.account() {
                return Err(LogError::NotOwner {
                    owner: first.entry.agent,
                    key: key.account(),
                });
            }
        }
        Ok(Self {
            path: path.into(),
            key,
            entries,
        })
    }

    /// Append one action (written and flushed before it returns).
    pub fn append(
        &mut self,
        time_ms: u64,
        action: &str,
        detail: &str,
        receipts: Vec<Hash32>,
    ) -> Result<&SignedLogEntry, LogError> {
        let entry = LogEntry {
            agent: self.key.account(),
            seq: self.entries.len() as u64,
            prev: self
                .entries
                .last()
                .map_or(Hash32::ZERO, SignedLogEntry::link),
            time_ms,
            action: action.into(),
            detail: detail.into(),
            receipts,
        }
        .sign(&self.key);
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.entries.push(entry);
        Ok(self.entries.last().expect("just pushed"))
    }

    /// [`AgentLog::append`] stamped with the current time.
    pub fn append_now(
        &mut self,
        action: &str,
        detail: &str,
        receipts: Vec<Hash32>,
    ) -> Result<&SignedLogEntry, LogError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.append(now_ms, action, detail, receipts)
    }

    /// The entries so far.
    pub fn entries(&self) -> &[SignedLogEntry] {
        &self.entries
    }

    /// What an `AnchorAgentLog` for the whole log carries: count, root and
    /// head (`None` while the log is empty).
    pub fn anchor(&self) -> Option<(u64, Hash32, Hash32)> {
        let last = self.entries.last()?;
        Some((
            self.entries.len() as u64,
            log_root(&self.entries),
            last.link(),
        ))
    }

    /// Whether `anchor` already covers the whole log.
    pub fn covered_by(&self, anchor: Option<&LogAnchor>) -> bool {
        anchor.is_some_and(|a| a.count == self.entries.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_chain_sign_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.log");
        let key = Keypair::from_seed([3; 32]);
        let mut log = AgentLog::open(&path, key.clone()).unwrap();
        assert!(log.anchor().is_none());
        log.append(10, "start", "", vec![]).unwrap();
        log.append(11, "pay", "{}", vec![Hash32([1; 32])]).unwrap();
        let again = AgentLog::open(&path, key).unwrap();
        assert_eq!(again.entries(), log.entries());
        let [a, b] = again.entries() else {
            panic!("two entries")
        };
        assert!(a.verify() && b.verify());
        assert_eq!((a.entry.seq, a.entry.prev), (0, Hash32::ZERO));
        assert_eq!((b.entry.seq, b.entry.prev), (1, a.link()));
        assert!(matches!(
            AgentLog::open(&path, Keypair::from_seed([4; 32])),
            Err(LogError::NotOwner { .. })
        ));
        std::fs::write(&path, "{not json\n").unwrap();
        assert!(matches!(
            read_log(&path),
            Err(LogError::Malformed { line: 1, .. })
        ));
    }

    /// Pinned with Python's `blake3` over the borsh bytes written out by
    /// hand: agent [5; 32], seq 1, prev [6; 32], time 7, action "a",
    /// detail "", receipts [[8; 32]].
    #[test]
    fn the_signing_hash_is_pinned() {
        let entry = LogEntry {
            agent: AccountId([5; 32]),
            seq: 1,
            prev: Hash32([6; 32]),
            time_ms: 7,
            action: "a".into(),
            detail: String::new(),
            receipts: vec![Hash32([8; 32])],
        };
        assert_eq!(hex(&entry.signing_bytes()), PINNED_SIGNING_HASH);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const PINNED_SIGNING_HASH: &str =
        "e0aa021787a573c795cfd525a1f68983768bd946000f0a40e8c9a3a626c45ae0";
}
