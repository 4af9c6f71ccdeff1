//! 32-byte BLAKE3 digests used as ids for blocks, transactions, models and receipts.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte digest, shown as lowercase hex.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero digest, used as the parent of the first block.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// BLAKE3 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Hash32(*blake3::hash(data).as_bytes())
    }

    /// BLAKE3 of `data` under a domain-separation context, so that equal bytes
    /// meant for different purposes never share a hash.
    pub fn digest_in(domain: &str, data: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(domain);
        hasher.update(data);
        Hash32(*hasher.finalize().as_bytes())
    }

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Why a string is not a valid 32-byte hex digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 hex characters (32 bytes), got {0:?}")]
pub struct ParseHashError(pub String);

impl FromStr for Hash32 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError(s.to_string()))?;
        Ok(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let h = Hash32::digest(b"agora");
        assert_eq!(h.to_hex().parse::<Hash32>().unwrap(), h);
        assert!("zz".parse::<Hash32>().is_err());
        assert!(h.to_hex()[..62].parse::<Hash32>().is_err());
    }

    #[test]
    fn domains_separate_equal_bytes() {
        assert_ne!(Hash32::digest_in("a", b"x"), Hash32::digest_in("b", b"x"));
    }
}
