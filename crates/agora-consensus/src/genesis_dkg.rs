//! The genesis DKG: the validators of a multi-validator genesis generate the
//! chain's initial BLS12-381 threshold key among themselves, so no party ever
//! knows the group secret (no trusted dealer).
//!
//! Each genesis validator holds only its own ed25519 identity key; the
//! genesis names their public keys. Before consensus starts, they run
//! commonware-glue's one-shot [`bootstrap`] engine: an ed25519-signed Simplex
//! chain of one epoch on which they run a Feldman–Desmedt DKG (dealings over
//! p2p, dealer logs in blocks, the output in the final block). The output (the
//! public polynomial, whose constant term is the group key light clients
//! trust) becomes epoch 0 of the agora chain; each validator's share stays in
//! its own secret store. A restarted validator does not run the ceremony
//! again: the engine reports the output from its stored final block and the
//! share comes from the store.
//!
//! A validator that is offline or misbehaves during the ceremony does not stop
//! it while at most `f` of `3f + 1` do; its share is then revealed publicly in
//! the dealer logs (it learns a private one in the next reshare).

use std::num::NonZeroU64;
use std::time::Duration;

use commonware_consensus::types::Epoch;
use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::Reveal,
    primitives::{sharing::Mode, variant::MinSig},
};
use commonware_glue::dkg::{
    bootstrap,
    types::{EpochOutcome, SchemeInfo},
    SecretStore as _,
};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    buffer::paged::CacheRef, Clock, Handle, Metrics, Spawner, Storage, Supervisor,
};
use commonware_utils::{ordered::Set, sequence::Unit, NZDuration, NZUsize, NZU16, NZU64};
use rand_core010::CryptoRng;

use crate::block::{EpochInfo, MAX_SHARING_MODE};
use crate::engine::Channels;
use crate::epochs::{
    scheme_from_info, DurableSecretStore, SecretStoreError, SharedSecretStore,
    GENESIS_DKG_SEED_DOMAIN,
};
use crate::keys::{GenesisSigner, PrivateKey, PublicKey, ValidatorKeys, NAMESPACE};

/// p2p channel of the genesis DKG chain's votes.
pub const CHANNEL_GENESIS_VOTE: u64 = 8;
/// p2p channel of the genesis DKG chain's certificates.
pub const CHANNEL_GENESIS_CERTIFICATE: u64 = 9;
/// p2p channel of the genesis DKG chain's certificate fetches.
pub const CHANNEL_GENESIS_RESOLVER: u64 = 10;
/// p2p channel of the genesis DKG chain's block broadcast.
pub const CHANNEL_GENESIS_BROADCAST: u64 = 11;
/// p2p channel of the genesis DKG chain's backfill.
pub const CHANNEL_GENESIS_BACKFILL: u64 = 12;
/// p2p channel of the genesis DKG's dealings and acknowledgements.
pub const CHANNEL_GENESIS_DKG: u64 = 13;

/// The genesis DKG's channels in [`Channels`] field order (vote, certificate,
/// resolver, broadcast, backfill, dkg).
pub const GENESIS_DKG_CHANNELS: [u64; 6] = [
    CHANNEL_GENESIS_VOTE,
    CHANNEL_GENESIS_CERTIFICATE,
    CHANNEL_GENESIS_RESOLVER,
    CHANNEL_GENESIS_BROADCAST,
    CHANNEL_GENESIS_BACKFILL,
    CHANNEL_GENESIS_DKG,
];

/// Blocks of the one-shot DKG chain; dealer logs land in its second half.
pub const GENESIS_DKG_BLOCKS: NonZeroU64 = NZU64!(20);

/// Why the genesis DKG produced no usable epoch 0.
#[derive(Debug, thiserror::Error)]
pub enum GenesisDkgError {
    /// This validator's identity is not among the genesis validators.
    #[error("this validator's identity is not a genesis validator")]
    NotParticipant,
    /// No genesis validators were named.
    #[error("the genesis names no validators")]
    NoValidators,
    /// The engine stopped before reporting an outcome.
    #[error("the genesis DKG engine stopped before reporting an outcome")]
    Stopped,
    /// The ceremony ended without an output (too few dealers finished, or the
    /// peer set could not be activated); the chain cannot start from it.
    #[error("the genesis DKG failed: no threshold key was produced")]
    Failed,
    /// The share in this validator's store does not fit the agreed output.
    #[error("the stored genesis share does not match the DKG output")]
    ShareMismatch,
    /// The private store could not open.
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
}

/// What one validator brings to the genesis DKG.
#[derive(Clone)]
pub struct GenesisDkgConfig {
    /// This validator's own identity key (never derived from a shared seed).
    pub identity: PrivateKey,
    /// Every genesis validator's public identity, as the genesis names them.
    pub participants: Set<PublicKey>,
    /// Prefix of the ceremony's storage partitions (unique per validator
    /// sharing a storage backend; stable across restarts).
    pub partition_prefix: String,
    /// Blocks of the one-shot DKG chain (identical on every validator).
    pub blocks: NonZeroU64,
}

/// The outcome of the genesis DKG for one validator.
pub struct GenesisDkg {
    /// Epoch 0 of the agora chain: the DKG output, with the same validators
    /// as players of the first reshares. Identical on every validator.
    pub genesis_epoch: EpochInfo,
    /// This validator's keys: its identity, and its epoch 0 signer if the
    /// ceremony dealt it a share.
    pub keys: ValidatorKeys,
    /// The engine, which keeps serving the one-shot chain to validators
    /// that have not finished; keep it running.
    pub handle: Handle<()>,
}

/// The group public key (what light clients trust) of `epoch`, encoded.
pub fn group_identity(epoch: &EpochInfo) -> Vec<u8> {
    commonware_codec::Encode::encode(epoch.output.public().public()).to_vec()
}

/// Run (or, after a restart, recover) the genesis DKG and return epoch 0 and
/// this validator's keys; resolves only once the output exists, so consensus
/// (started with them) cannot finalize before it.
///
/// `manager` must not yet track peer set 0 with other peers: the engine
/// tracks the genesis validators under it.
pub async fn run_genesis_dkg<E, S, R, M, B>(
    context: E,
    config: GenesisDkgConfig,
    manager: M,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<GenesisDkg, GenesisDkgError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    M: commonware_glue::dkg::network::Manager<PublicKey = PublicKey, Directory = Unit>,
    B: Blocker<PublicKey = PublicKey>,
{
    use commonware_cryptography::Signer as _;
    if config.participants.is_empty() {
        return Err(GenesisDkgError::NoValidators);
    }
    let me = config.identity.public_key();
    if config.participants.position(&me).is_none() {
        return Err(GenesisDkgError::NotParticipant);
    }
    let prefix = config.partition_prefix;
    let store = SharedSecretStore::new(
        DurableSecretStore::open_in_domain(
            context.child("genesis_dkg_secrets"),
            format!("{prefix}-secrets"),
            &commonware_codec::Encode::encode(&config.identity),
            GENESIS_DKG_SEED_DOMAIN,
        )
        .await?,
    );
    let buffer = NZUsize!(1 << 16);
    let engine = bootstrap::Engine::<_, MinSig, _, _, _, _, _>::new(
        context.child("genesis_dkg"),
        bootstrap::Config {
            signer: config.identity.clone(),
            manager,
            blocker,
            secret_store: store.clone(),
            strategy: Sequential,
            namespace: NAMESPACE,
            sharing_mode: Mode::NonZeroCounter,
            reveal: Reveal::V1,
            max_supported_mode: MAX_SHARING_MODE,
            partition_prefix: prefix,
            page_cache: CacheRef::new(NZU16!(4_096), NZUsize!(256)),
            write_buffer: buffer,
            replay_buffer: buffer,
            mailbox_size: NZUsize!(1024),
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            items_per_section: NZU64!(16),
            participants: config.participants.clone(),
            directory: Unit,
            blocks_per_epoch: config.blocks,
        },
    );
    let (handle, completion) = engine.start(
        channels.vote,
        channels.certificate,
        channels.resolver,
        channels.backfill,
        channels.broadcast,
        channels.dkg,
    );
    let completion = completion.await.map_err(|_| GenesisDkgError::Stopped)?;
    let Some(mut info) = completion.info else {
        return Err(GenesisDkgError::Failed);
    };
    if !matches!(info.outcome, EpochOutcome::Success) || info.epoch != Epoch::zero() {
        return Err(GenesisDkgError::Failed);
    }
    // The one-shot chain has no next epoch; on the agora chain the genesis
    // validators keep playing until the ledger elects others.
    info.next_players = info.players.clone();
    let players = info.output.players().clone();
    let sharing = info.output.public().clone();
    let mut reader = store;
    let genesis = match reader.get_share(Epoch::zero()).await {
        Some(share) => {
            let expected = sharing
                .partial_public(share.index)
                .map_err(|_| GenesisDkgError::ShareMismatch)?;
            if share.public::<MinSig>() != expected {
                return Err(GenesisDkgError::ShareMismatch);
            }
            let scheme = scheme_from_info(SchemeInfo::Signer {
                participants: players,
                sharing,
                share: share.clone(),
            })
            .ok_or(GenesisDkgError::ShareMismatch)?;
            Some(GenesisSigner { scheme, share })
        }
        // Finished without a share (it missed the ceremony and its share was
        // not recoverable here): it verifies epoch 0 and gets a share in the
        // next reshare.
        None => None,
    };
    Ok(GenesisDkg {
        genesis_epoch: info,
        keys: ValidatorKeys {
            identity: config.identity,
            genesis,
        },
        handle,
    })
}

/// Epoch 0 in its canonical encoding (what validators record and joiners load).
pub fn encode_genesis_epoch(epoch: &EpochInfo) -> Vec<u8> {
    commonware_codec::Encode::encode(epoch).to_vec()
}

/// Epoch 0 from [`encode_genesis_epoch`]'s bytes.
pub fn decode_genesis_epoch(bytes: &[u8]) -> Result<EpochInfo, commonware_codec::Error> {
    use commonware_codec::Decode as _;
    EpochInfo::decode_cfg(
        bytes::Bytes::copy_from_slice(bytes),
        &(crate::block::MAX_PARTICIPANTS, MAX_SHARING_MODE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_epoch_round_trips_and_names_the_group_key() {
        let keys = crate::keys::devnet_keys(5, 4).unwrap();
        let epoch = keys.genesis_epoch();
        let bytes = encode_genesis_epoch(&epoch);
        let back = decode_genesis_epoch(&bytes).unwrap();
        assert_eq!(encode_genesis_epoch(&back), bytes);
        assert_eq!(
            group_identity(&back),
            crate::light::devnet_identity(5, 4).unwrap()
        );
        assert!(decode_genesis_epoch(&bytes[..bytes.len() - 1]).is_err());
    }
}
