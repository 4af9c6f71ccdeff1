//! The single-validator devnet's trusted dealer of its threshold key: its
//! seed and the public identity dealt from it. A multi-validator genesis
//! (the localnet) generates its key with the genesis DKG instead.

use std::path::Path;

use agora_tasks::{Context, Failure};

use crate::keys;

/// The dealing seed: the first 8 bytes of the dealer key's seed.
pub fn dealer_seed(path: &Path) -> Result<u64, Failure> {
    let key = keys::load(path)?;
    let seed = key.seed();
    let mut first = [0u8; 8];
    first.copy_from_slice(&seed[..8]);
    Ok(u64::from_le_bytes(first))
}

/// The single devnet validator's public identity (BLS group key, hex): what light clients trust.
pub fn identity_hex(seed: u64) -> Result<String, Failure> {
    let identity = agora_consensus::devnet_identity(seed, 1)
        .context("dealing the validators' threshold keys")?;
    Ok(hex::encode(identity))
}
