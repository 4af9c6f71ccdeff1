//! Deterministic binary encoding (borsh) with a size limit on decoding, so
//! that untrusted bytes can never make a node allocate without bound.

use borsh::{BorshDeserialize, BorshSerialize};

/// Largest encoded object accepted from outside (a block or transaction).
pub const MAX_ENCODED_LEN: usize = 8 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input is larger than [`MAX_ENCODED_LEN`].
    #[error("encoded object is {0} bytes, larger than the {MAX_ENCODED_LEN}-byte limit")]
    TooLarge(usize),
    /// The bytes do not form a valid value (truncated, trailing bytes, bad tag...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Canonical bytes of a value.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh serialization to a Vec cannot fail for agora types")
}

/// Decode a value, rejecting oversized input and trailing bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed(e.to_string()))
}
