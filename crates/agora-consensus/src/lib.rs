//! BFT consensus for agora: commonware simplex (BLS12-381 threshold, VRF seeds)
//! plus marshal, driving the agora ledger.
//!
//! This is the only crate that sees commonware types. It provides:
//! - [`block::ConsensusBlock`]: an agora block in consensus' codec;
//! - [`application::AgoraApp`]: proposes with `agora_ledger::build_block` and
//!   verifies with `agora_ledger::apply_block`;
//! - [`finalized`]: ordered, exactly-once delivery of finalized blocks with
//!   their post-state and randomness;
//! - [`genesis_dkg::run_genesis_dkg`]: the validators' distributed
//!   generation of the genesis threshold key (no trusted dealer);
//! - [`engine::start_validator`]: wiring over any runtime and p2p network, with
//!   [`production::run_validator`] (tokio + authenticated lookup p2p) on top.

pub mod application;
pub mod block;
pub mod engine;
pub mod epochs;
pub mod finalized;
pub mod genesis_dkg;
pub mod gossip;
pub mod keys;
pub mod ledger;
pub mod light;
pub mod mempool;
pub mod production;
pub mod provenance;
pub mod seed_tap;
pub mod seeds;

pub use application::{verify_block, AgoraApp, BlockLimits, VerifyError};
pub use block::{BlockCfg, ConsensusBlock};
pub use engine::{start_validator, Channels, EngineError, Timeouts, ValidatorConfig};
pub use finalized::{EpochChange, Finalized, FinalizedSink};
pub use genesis_dkg::{run_genesis_dkg, GenesisDkg, GenesisDkgConfig, GenesisDkgError};
pub use gossip::{gossip_channel, GossipReceiver, GossipSender};
pub use keys::{devnet_keys, DevnetKeys, ValidatorKeys};
pub use ledger::LedgerView;
pub use light::{devnet_identity, FinalityVerifier, LightError};
pub use mempool::{InMemoryTxSource, NoTxs, TxSource};
pub use production::{
    joiner_identity, run_validator, GenesisPeer, NodeConfig, Seat, CHANNEL_TXS, GENESIS_EPOCH_FILE,
    IDENTITY_FILE,
};
