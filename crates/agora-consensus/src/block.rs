//! The block that consensus orders: an agora [`Block`] (or the genesis anchor),
//! encoded with agora's canonical borsh codec inside a commonware frame.
//!
//! The consensus digest of a block *is* its agora block id
//! ([`BlockHeader::id`](agora_types::BlockHeader::id)), and the digest of the
//! genesis anchor is the genesis hash, so consensus parent links and agora
//! `header.parent` links are the same thing.

use std::num::NonZeroU32;

use agora_types::{codec, Block, Hash32};
use bytes::{BufMut, Bytes};
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize, RangeCfg, Read,
    ReadExt, Write,
};
use commonware_consensus::{
    simplex::types::Context,
    types::{Epoch, Height, Round, View},
    BoundedBlock, CertifiableBlock, Heightable,
};
use commonware_cryptography::{
    bls12381::primitives::{
        sharing::ModeVersion,
        variant::{MinSig, Variant},
    },
    sha256, Digestible,
};
use commonware_glue::dkg::{types, ReshareBlock};
use commonware_utils::sequence::Unit;

use crate::keys::PublicKey;
use crate::seeds::{seed_randomness, Seed};

/// Consensus digest type (32 bytes; holds an agora BLAKE3 block id).
pub type Digest = sha256::Digest;
/// The round a block was proposed in: epoch, view, leader and parent.
pub type RoundContext = Context<Digest, PublicKey>;
/// A key-resharing artifact a block carries: a dealer log, or the next epoch's description.
pub type Payload = types::Payload<MinSig, PublicKey, Unit>;
/// The public description of an epoch: its threshold key, dealers and players.
pub type EpochInfo = types::EpochInfo<MinSig, PublicKey, Unit>;

/// Default bound on an encoded agora block accepted from the network.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 1 << 20;
/// Most validators in one epoch's committee.
pub const MAX_PARTICIPANTS: NonZeroU32 = match NonZeroU32::new(128) {
    Some(n) => n,
    None => unreachable!(),
};
/// Newest threshold sharing mode accepted from the network.
pub const MAX_SHARING_MODE: ModeVersion = ModeVersion::v0();

const TAG_GENESIS: u8 = 0;
const TAG_AGORA: u8 = 1;
const CONSENSUS_DOMAIN: &str = "agora 2026 consensus extension v1";

/// Converts an agora hash into a consensus digest.
pub fn to_digest(hash: Hash32) -> Digest {
    sha256::Digest(hash.0)
}

/// Converts a consensus digest into an agora hash.
pub fn to_hash(digest: &Digest) -> Hash32 {
    Hash32(digest.0)
}

/// The commitment a header carries to the consensus data beside it.
pub fn consensus_commitment(context: &RoundContext, payload: Option<&Payload>) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(CONSENSUS_DOMAIN);
    hasher.update(&context.encode());
    hasher.update(&payload.cloned().encode());
    Hash32(*hasher.finalize().as_bytes())
}

/// The hash that names a genesis epoch description.
pub fn epoch_info_hash(info: &EpochInfo) -> Hash32 {
    Hash32::digest_in(CONSENSUS_DOMAIN, &info.encode())
}

/// Decoding parameters: the block size bound and the only acceptable genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCfg {
    /// Largest encoded agora block (borsh bytes) accepted.
    pub max_block_bytes: usize,
    /// The genesis hash of this chain; a genesis anchor naming any other hash is rejected.
    pub genesis: Hash32,
    /// Hash of the genesis epoch description ([`epoch_info_hash`]).
    pub genesis_info: Hash32,
}

/// A block as ordered by consensus.
// Nearly every block is `Agora`; boxing it would cost an allocation per block
// to shrink the one genesis anchor.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
pub enum ConsensusBlock {
    /// Height 0: the chain's genesis with the description of epoch 0.
    Genesis {
        /// The genesis hash.
        hash: Hash32,
        /// Epoch 0's threshold key and committee.
        info: Box<EpochInfo>,
    },
    /// Height ≥ 1: an agora block with the consensus data its header commits to.
    Agora {
        /// The agora block.
        block: Block,
        /// The round it was proposed in.
        context: RoundContext,
        /// The resharing artifact it carries, if any.
        payload: Option<Box<Payload>>,
        /// The parent round's threshold VRF seed (`None` on genesis), which
        /// the header's `randomness` hashes ([`seed_randomness`]).
        seed: Option<Seed>,
    },
}

impl ConsensusBlock {
    /// An agora block proposed in `context` carrying `payload` and its parent
    /// round's `seed`; sets the header commitment. The header's randomness
    /// must already be the seed's ([`seed_randomness`]; the block was built
    /// with it, since the ledger draws from it): decoding and
    /// [`check_parent_seed`](crate::seeds::check_parent_seed) refuse it otherwise.
    pub fn agora(
        mut block: Block,
        context: RoundContext,
        payload: Option<Payload>,
        seed: Option<Seed>,
    ) -> Self {
        block.header.consensus = consensus_commitment(&context, payload.as_ref());
        ConsensusBlock::Agora {
            block,
            context,
            payload: payload.map(Box::new),
            seed,
        }
    }

    /// The parent round's seed a block carries (`None` on genesis and on a
    /// block built on genesis).
    pub fn seed(&self) -> Option<&Seed> {
        match self {
            ConsensusBlock::Agora { seed, .. } => seed.as_ref(),
            ConsensusBlock::Genesis { .. } => None,
        }
    }

    /// The agora block, or `None` for the genesis anchor.
    pub fn agora_block(&self) -> Option<&Block> {
        match self {
            ConsensusBlock::Genesis { .. } => None,
            ConsensusBlock::Agora { block, .. } => Some(block),
        }
    }

    /// The block id (agora block id, or the genesis hash at height 0).
    pub fn id(&self) -> Hash32 {
        match self {
            ConsensusBlock::Genesis { hash, .. } => *hash,
            ConsensusBlock::Agora { block, .. } => block.header.id(),
        }
    }
}

impl std::fmt::Debug for ConsensusBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsensusBlock::Genesis { hash, info } => f
                .debug_struct("Genesis")
                .field("hash", hash)
                .field("epoch", &info.epoch)
                .finish(),
            ConsensusBlock::Agora {
                block,
                context,
                payload,
                seed,
            } => f
                .debug_struct("Agora")
                .field("block", block)
                .field("context", context)
                .field("seed_round", &seed.as_ref().map(|s| s.round))
                .field(
                    "payload",
                    &payload.as_deref().map(|p| match p {
                        types::Payload::DealerLog(_) => "dealer log",
                        types::Payload::EpochInfo(_) => "epoch info",
                    }),
                )
                .finish(),
        }
    }
}

impl Write for ConsensusBlock {
    fn write(&self, w: &mut impl BufMut) {
        match self {
            ConsensusBlock::Genesis { hash, info } => {
                TAG_GENESIS.write(w);
                hash.0.write(w);
                info.write(w);
            }
            ConsensusBlock::Agora {
                block,
                context,
                payload,
                seed,
            } => {
                TAG_AGORA.write(w);
                Bytes::from(codec::encode(block)).write(w);
                context.write(w);
                payload.as_deref().cloned().write(w);
                seed.write(w);
            }
        }
    }
}

impl EncodeSize for ConsensusBlock {
    fn encode_size(&self) -> usize {
        match self {
            ConsensusBlock::Genesis { info, .. } => 1 + 32 + info.encode_size(),
            ConsensusBlock::Agora {
                block,
                context,
                payload,
                seed,
            } => {
                1 + Bytes::from(codec::encode(block)).encode_size()
                    + context.encode_size()
                    + payload.as_deref().cloned().encode_size()
                    + seed.encode_size()
            }
        }
    }
}

impl Read for ConsensusBlock {
    type Cfg = BlockCfg;

    fn read_cfg(r: &mut impl Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        let payload_cfg = (MAX_PARTICIPANTS, MAX_SHARING_MODE);
        match u8::read(r)? {
            TAG_GENESIS => {
                let hash = Hash32(<[u8; 32]>::read(r)?);
                if hash != cfg.genesis {
                    return Err(CodecError::Invalid("ConsensusBlock", "unknown genesis"));
                }
                let info = EpochInfo::read_cfg(r, &payload_cfg)?;
                if epoch_info_hash(&info) != cfg.genesis_info {
                    return Err(CodecError::Invalid(
                        "ConsensusBlock",
                        "unknown genesis epoch",
                    ));
                }
                Ok(ConsensusBlock::Genesis {
                    hash,
                    info: Box::new(info),
                })
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
                let context = RoundContext::read(r)?;
                let payload = Option::<Payload>::read_cfg(r, &payload_cfg)?;
                if block.header.consensus != consensus_commitment(&context, payload.as_ref()) {
                    return Err(CodecError::Invalid(
                        "ConsensusBlock",
                        "header does not commit to its consensus data",
                    ));
                }
                let seed = Option::<Seed>::read(r)?;
                if block.header.randomness != seed_randomness(seed.as_ref()) {
                    return Err(CodecError::Invalid(
                        "ConsensusBlock",
                        "header randomness is not its seed's",
                    ));
                }
                Ok(ConsensusBlock::Agora {
                    block,
                    context,
                    payload: payload.map(Box::new),
                    seed,
                })
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
            ConsensusBlock::Genesis { .. } => Height::zero(),
            ConsensusBlock::Agora { block, .. } => Height::new(block.header.height),
        }
    }
}

impl commonware_consensus::Block for ConsensusBlock {
    fn parent(&self) -> Digest {
        match self {
            // The genesis anchor has no parent; the all-zero digest names "none".
            ConsensusBlock::Genesis { .. } => to_digest(Hash32::ZERO),
            ConsensusBlock::Agora { block, .. } => to_digest(block.header.parent),
        }
    }
}

impl CertifiableBlock for ConsensusBlock {
    type Context = RoundContext;

    fn context(&self) -> RoundContext {
        match self {
            ConsensusBlock::Agora { context, .. } => context.clone(),
            // Genesis is never proposed: a fixed context led by epoch 0's first dealer.
            ConsensusBlock::Genesis { info, .. } => RoundContext {
                round: Round::new(Epoch::zero(), View::zero()),
                leader: info
                    .output
                    .players()
                    .iter()
                    .next()
                    .cloned()
                    .expect("an epoch has at least one dealer"),
                parent: (View::zero(), to_digest(Hash32::ZERO)),
            },
        }
    }
}

impl ReshareBlock for ConsensusBlock {
    type Variant = MinSig;
    type PublicKey = PublicKey;
    type Directory = Unit;

    fn payload(&self) -> Option<Payload> {
        match self {
            ConsensusBlock::Genesis { info, .. } => {
                Some(types::Payload::EpochInfo(info.as_ref().clone()))
            }
            ConsensusBlock::Agora { payload, .. } => payload.as_deref().cloned(),
        }
    }
}

impl BoundedBlock for ConsensusBlock {
    fn max_encode_size(cfg: &BlockCfg) -> usize {
        // tag + varint length (≤ 10 bytes) + body + context + optional payload
        // + optional seed; the genesis anchor is smaller.
        1 + 10
            + cfg.max_block_bytes.max(32)
            + RoundContext::MAX_ENCODE_SIZE
            + 1
            + Payload::max_encode_size(MAX_PARTICIPANTS)
            + 1
            + Round::MAX_ENCODE_SIZE
            + <MinSig as Variant>::Signature::SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{AccountId, BlockHeader};
    use commonware_codec::{Decode, Encode};
    use commonware_cryptography::Signer as _;

    fn genesis_info() -> EpochInfo {
        crate::keys::devnet_keys(3, 4).unwrap().genesis_epoch()
    }

    fn cfg() -> BlockCfg {
        BlockCfg {
            max_block_bytes: 4096,
            genesis: Hash32::digest(b"g"),
            genesis_info: epoch_info_hash(&genesis_info()),
        }
    }

    fn context() -> RoundContext {
        RoundContext {
            round: Round::new(Epoch::new(2), View::new(9)),
            leader: crate::keys::devnet_identity(3, 1).public_key(),
            parent: (View::new(8), to_digest(Hash32::digest(b"p"))),
        }
    }

    /// The parent round's seed [`sample`] carries.
    fn parent_seed() -> Seed {
        crate::seeds::tests::signed_seed(1, Round::new(Epoch::new(2), View::new(8))).1
    }

    fn sample() -> ConsensusBlock {
        let block = Block {
            header: BlockHeader {
                chain_id: "test".into(),
                height: 3,
                parent: Hash32::digest(b"p"),
                timestamp_ms: 7,
                proposer: AccountId([5; 32]),
                tx_root: Hash32::digest(b"t"),
                state_root: Hash32::digest(b"s"),
                consensus: Hash32::ZERO,
                randomness: seed_randomness(Some(&parent_seed())),
            },
            txs: vec![],
        };
        ConsensusBlock::agora(
            block,
            context(),
            Some(types::Payload::EpochInfo(genesis_info())),
            Some(parent_seed()),
        )
    }

    #[test]
    fn round_trip_and_digest_is_block_id() {
        let b = sample();
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.encode_size());
        let back = ConsensusBlock::decode_cfg(bytes, &cfg()).unwrap();
        assert_eq!(back, b);
        assert_eq!(to_hash(&b.digest()), b.agora_block().unwrap().header.id());
        assert_eq!(b.height().get(), 3);
        assert_eq!(b.context(), context());
        assert_eq!(b.seed(), Some(&parent_seed()));
        assert!(matches!(b.payload(), Some(types::Payload::EpochInfo(_))));
        let g = ConsensusBlock::Genesis {
            hash: cfg().genesis,
            info: Box::new(genesis_info()),
        };
        let back = ConsensusBlock::decode_cfg(g.encode(), &cfg()).unwrap();
        assert_eq!(back, g);
        assert_eq!(to_hash(&g.digest()), cfg().genesis);
        assert!(g.payload() == Some(types::Payload::EpochInfo(genesis_info())));
    }

    #[test]
    fn header_must_commit_to_context_and_payload() {
        let ConsensusBlock::Agora { block, .. } = sample() else {
            unreachable!()
        };
        // Same block and header commitment, but carried with another round or payload.
        for (context, payload) in [
            (
                RoundContext {
                    round: Round::new(Epoch::new(2), View::new(10)),
                    ..context()
                },
                Some(Box::new(types::Payload::EpochInfo(genesis_info()))),
            ),
            (context(), None),
        ] {
            let forged = ConsensusBlock::Agora {
                block: block.clone(),
                context,
                payload,
                seed: Some(parent_seed()),
            };
            assert!(ConsensusBlock::decode_cfg(forged.encode(), &cfg()).is_err());
        }
    }

    #[test]
    fn header_randomness_must_be_the_carried_seeds() {
        let ConsensusBlock::Agora {
            block,
            context,
            payload,
            ..
        } = sample()
        else {
            unreachable!()
        };
        let other = crate::seeds::tests::signed_seed(2, Round::new(Epoch::new(2), View::new(8))).1;
        // The same header (randomness of `parent_seed`) beside no seed, or another one.
        for seed in [None, Some(other)] {
            let forged = ConsensusBlock::Agora {
                block: block.clone(),
                context: context.clone(),
                payload: payload.clone(),
                seed,
            };
            assert!(ConsensusBlock::decode_cfg(forged.encode(), &cfg()).is_err());
        }
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

        let foreign = ConsensusBlock::Genesis {
            hash: Hash32::digest(b"other"),
            info: Box::new(genesis_info()),
        };
        assert!(ConsensusBlock::decode_cfg(foreign.encode(), &cfg()).is_err());
        let other_epoch = ConsensusBlock::Genesis {
            hash: cfg().genesis,
            info: Box::new(crate::keys::devnet_keys(4, 4).unwrap().genesis_epoch()),
        };
        assert!(ConsensusBlock::decode_cfg(other_epoch.encode(), &cfg()).is_err());

        assert!(ConsensusBlock::decode_cfg(Bytes::from_static(&[9u8]), &cfg()).is_err());
    }

    #[test]
    fn rejects_garbage_inside_frame() {
        // A well-formed frame whose body has trailing bytes after the borsh block.
        let mut body = codec::encode(sample().agora_block().unwrap());
        body.push(1);
        let mut buf = Vec::new();
        TAG_AGORA.write(&mut buf);
        Bytes::from(body).write(&mut buf);
        context().write(&mut buf);
        None::<Payload>.write(&mut buf);
        assert!(ConsensusBlock::decode_cfg(Bytes::from(buf), &cfg()).is_err());
    }

    #[test]
    fn bounded_size_covers_max_block() {
        assert!(ConsensusBlock::max_encode_size(&cfg()) >= sample().encode_size());
    }
}
