//! Agents on agora. An agent is an on-chain identity (see
//! [`agora_types::agent`]) that pays its own way; this crate gives it a
//! tamper-evident action log: every action is a signed entry naming the
//! hash of the one before ([`log`]), the log's Merkle root is anchored on
//! chain now and then, and [`verify`] checks a log file against those
//! anchors, so a dropped, reordered or edited entry is found, and a single
//! entry can be proven to be in an anchored log.

pub mod log;
pub mod verify;
pub mod watcher;

pub use log::{AgentLog, LogEntry, LogError, SignedLogEntry};
pub use verify::{verify_log, EntryProof, LogReport, VerifyError};
pub use watcher::{AgentError, Summary, Watcher, WatcherConfig};
