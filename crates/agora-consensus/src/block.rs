//! The block that consensus orders: an agora [`Block`] (or the genesis anchor),
//! encoded with agora's canonical borsh codec inside a commonware frame.
//!
//! The consensus digest of a block *is* its agora block id
//! ([`BlockHeader::id`](agora_types::BlockHeader::id)), and the digest of the
//! genesis anchor is the genesis hash, so consensus parent links and agora
//! `header.parent` links are the same thing.

use agora_types::{codec, Block, Hash32};
use bytes::{BufMut, Bytes};
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_consensus::{types::Height, BoundedBlock, Heightable};
use commonware_cryptography::{sha256, Digestible};

/// Consensus digest type (32 bytes; holds an agora BLAKE3 block id).
pub type Digest = sha256::Digest;

/// Default bound on an encoded agora block accepted from the network.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 1 << 20;

const TAG_GENESIS: u8 = 0;
const TAG_AGORA: u8 = 1;

/// Converts an agora hash into a consensus digest.
pub fn to_digest(hash: Hash32) -> Digest {
    sha256::Digest(hash.0)
}

/// Converts a consensus digest into an agora hash.
pub fn to_hash(digest: &Digest) -> Hash32 {
    Hash32(digest.0)
}

/// Decoding parameters: the block size bound and the only acceptable genesis hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCfg {
    /// Largest encoded agora block (borsh bytes) accepted.
    pub max_block_bytes: usize,
    /// The genesis hash of this chain; a genesis anchor naming any other hash is rejected.
    pub genesis: Hash32,
}

/// A block as ordered by consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusBlock {
    /// Height 0: the chain's genesis, identified by its genesis hash.
    Genesis(Hash32),
    /// Height ≥ 1: an agora block.
    Agora(Block),
}

impl ConsensusBlock {
    /// The agora block, or `None` for the genesis anchor.
    pub fn agora(&self) -> Option<&Block> {
        match self {
            ConsensusBlock::Genesis(_) => None,
            ConsensusBlock::Agora(b) => Some(b),
        }
    }

    /// The block id (agora block id, or the genesis hash at height 0).
    pub fn id(&self) -> Hash32 {
        match self {
            ConsensusBlock::Genesis(h) => *h,
            ConsensusBlock::Agora(b) => b.header.id(),
        }
    }

    fn body(&self) -> Option<Vec<u8>> {
        self.agora().map(codec::encode)
    }
}

impl Write for ConsensusBlock {
    fn write(&self, w: &mut impl BufMut) {
        match self {
            ConsensusBlock::Genesis(h) => {
                TAG_GENESIS.write(w);
                h.0.write(w);
            }
            ConsensusBlock::Agora(b) => {
                TAG_AGORA.write(w);
                Bytes::from(codec::encode(b)).write(w);
            }
        }
    }
}

impl EncodeSize for ConsensusBlock {
    fn encode_size(&self) -> usize {
        match self.body() {
            None => 1 + 32,
            Some(body) => 1 + Bytes::from(body).encode_size(),
        }
    }
}

impl Read for ConsensusBlock {
    type Cfg = BlockCfg;

    fn read_cfg(r: &mut impl Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        match u8::read(r)? {
            TAG_GENESIS => {
                let hash = Hash32(<[u8; 32]>::read(r)?);
                if hash != cfg.genesis {
                    return Err(CodecError::Invalid("ConsensusBlock", "unknown genesis"));
                }
                Ok(ConsensusBlock::Genesis(hash))
            }
            TAG_AGORA => {
                let bytes = Bytes::read_cfg(r, &RangeCfg::new(..=cfg.max_block_bytes))?;
                let block: Block = codec::decode(&bytes)
                    .map_err(|_| CodecError::Invalid("ConsensusBlock", "malformed agora block"))?;
                // borsh decoding is not guaranteed canonical for every type: insist on it.
                if codec::encode(&block) != bytes.as_ref() {
                    return Err(CodecError::Invalid(
                        "ConsensusBlock",
                        "non-canonical encoding",
                    ));
                }
                if block.header.height == 0 {
                    return Err(CodecError::Invalid(
                        "ConsensusBlock",
                        "agora block at height 0",
                    ));
                }
                Ok(ConsensusBlock::Agora(block))
            }
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

impl Digestible for ConsensusBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        to_digest(self.id())
    }
}

impl Heightable for ConsensusBlock {
    fn height(&self) -> Height {
        match self {
            ConsensusBlock::Genesis(_) => Height::zero(),
            ConsensusBlock::Agora(b) => Height::new(b.header.height),
        }
    }
}

impl commonware_consensus::Block for ConsensusBlock {
    fn parent(&self) -> Digest {
        match self {
            // The genesis anchor has no parent; the all-zero digest names "none".
            ConsensusBlock::Genesis(_) => to_digest(Hash32::ZERO),
            ConsensusBlock::Agora(b) => to_digest(b.header.parent),
        }
    }
}

impl BoundedBlock for ConsensusBlock {
    fn max_encode_size(cfg: &BlockCfg) -> usize {
        // tag + varint length (≤ 10 bytes) + body; the genesis anchor is smaller.
        1 + 10 + cfg.max_block_bytes.max(32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{AccountId, BlockHeader};
    use commonware_codec::{Decode, Encode};

    fn cfg() -> BlockCfg {
        BlockCfg {
            max_block_bytes: 4096,
            genesis: Hash32::digest(b"g"),
        }
    }

    fn sample() -> ConsensusBlock {
        ConsensusBlock::Agora(Block {
            header: BlockHeader {
                chain_id: "test".into(),
                height: 3,
                parent: Hash32::digest(b"p"),
                timestamp_ms: 7,
                proposer: AccountId([5; 32]),
                tx_root: Hash32::digest(b"t"),
                state_root: Hash32::digest(b"s"),
            },
            txs: vec![],
        })
    }

    #[test]
    fn round_trip_and_digest_is_block_id() {
        let b = sample();
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.encode_size());
        let back = ConsensusBlock::decode_cfg(bytes, &cfg()).unwrap();
        assert_eq!(back, b);
        assert_eq!(to_hash(&b.digest()), b.agora().unwrap().header.id());
        assert_eq!(b.height().get(), 3);
        let g = ConsensusBlock::Genesis(cfg().genesis);
        let back = ConsensusBlock::decode_cfg(g.encode(), &cfg()).unwrap();
        assert_eq!(back, g);
        assert_eq!(to_hash(&g.digest()), cfg().genesis);
    }

    #[test]
    fn rejects_trailing_oversize_foreign_genesis_and_bad_tag() {
        let mut bytes = sample().encode().to_vec();
        bytes.push(0);
        assert!(ConsensusBlock::decode_cfg(Bytes::from(bytes), &cfg()).is_err());

        let small = BlockCfg {
            max_block_bytes: 8,
            ..cfg()
        };
        assert!(ConsensusBlock::decode_cfg(sample().encode(), &small).is_err());

        let foreign = ConsensusBlock::Genesis(Hash32::digest(b"other"));
        assert!(ConsensusBlock::decode_cfg(foreign.encode(), &cfg()).is_err());

        assert!(ConsensusBlock::decode_cfg(Bytes::from_static(&[9u8]), &cfg()).is_err());
    }

    #[test]
    fn rejects_garbage_inside_frame() {
        // A well-formed frame whose body has trailing bytes after the borsh block.
        let mut body = codec::encode(sample().agora().unwrap());
        body.push(1);
        let mut buf = Vec::new();
        TAG_AGORA.write(&mut buf);
        Bytes::from(body).write(&mut buf);
        assert!(ConsensusBlock::decode_cfg(Bytes::from(buf), &cfg()).is_err());
    }

    #[test]
    fn bounded_size_covers_max_block() {
        assert!(ConsensusBlock::max_encode_size(&cfg()) >= sample().encode_size());
    }
}
