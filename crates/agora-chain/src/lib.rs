//! The chain node: accepts transactions into a mempool, gets blocks either
//! from its own single-node producer ([`Node::run`], the devnet) or from the
//! BFT engine as one validator of several ([`spawn_validator`]), persists
//! every block and the resulting state in redb (one durable write per block),
//! and serves the HTTP/JSON RPC.

mod agent_rpc;
mod error;
mod explorer_rpc;
mod extract;
mod history;
mod mempool;
mod metrics;
mod node;
mod rpc;
mod start;
mod store;
mod validator;

pub use agora_consensus::{GenesisPeer, Seat, Timeouts, GENESIS_EPOCH_FILE, IDENTITY_FILE};
pub use error::{tx_error_code, ChainError, SubmitError};
pub use mempool::MAX_PENDING_PER_SENDER;
pub use metrics::ChainMetrics;
pub use node::{ChainConfig, Finality, Node, Relay};
pub use start::{rpc_limits, start, NodeHandle, NodeSetup};
pub use store::Store;
pub use validator::{spawn_validator, ValidatorSetup};
