//! The chain node: accepts transactions into a mempool, produces blocks on a
//! fixed interval by driving the pure ledger, persists every block and the
//! resulting state in redb (one durable write per block), and serves the
//! HTTP/JSON RPC.
//!
//! This is the single-node block producer; a BFT engine replaces
//! [`Node::produce_block`]'s caller later while the ledger and store stay.

mod error;
mod mempool;
mod node;
mod rpc;
mod store;

pub use error::{ChainError, SubmitError};
pub use node::{ChainConfig, Node};
pub use store::Store;
