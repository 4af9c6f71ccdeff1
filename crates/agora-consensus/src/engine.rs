//! Wiring of one validator: block buffer, marshal (with its archives and
//! backfill resolver), the key-resharing actor and one simplex instance per
//! epoch (commonware-glue's orchestrator), over any p2p network and runtime.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use agora_ledger::Genesis;
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self, core::Actor as MarshalActor, resolver::p2p as marshal_resolver, standard::Inline,
        standard::Standard,
    },
    simplex::{self, elector::RoundRobin, ForwardPolicy, SkipBudget, SkipPolicy},
    types::{Epoch, FixedEpocher, ViewDelta},
    Reporters,
};
use commonware_cryptography::{
    bls12381::{dkg::feldman_desmedt::Reveal, primitives::sharing::Mode},
    certificate::ConstantProvider,
    Digested, Sha256,
};
use commonware_glue::dkg::{
    fence::Fence,
    network::Manager,
    orchestrator, reshare,
    state_sync::{Config as StateSyncConfig, Plan as StateSyncPlan},
    SecretStore as _,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    buffer::paged::CacheRef, Clock, Handle, Metrics, Network, Spawner, Storage, Supervisor,
};
use commonware_storage::archive::immutable;
use commonware_utils::{
    channel::mpsc, sequence::Unit, NZDuration, NZUsize, NonZeroDuration, NZU16, NZU64,
};
use rand_core010::CryptoRng;

use crate::application::{AgoraApp, BlockLimits};
use crate::block::{
    epoch_info_hash, to_digest, BlockCfg, ConsensusBlock, EpochInfo, MAX_PARTICIPANTS,
    MAX_SHARING_MODE,
};
use crate::epochs::{DurableSecretStore, LedgerCommittee, SchemeRegistrar, SchemeRegistry};
use crate::finalized::{BlockForwarder, Delivery, FinalizedSink};
use crate::keys::{PublicKey, Scheme, ValidatorKeys, NAMESPACE};
use crate::ledger::LedgerView;
use crate::mempool::TxSource;
use crate::seed_tap::SeedTap;
use crate::seeds::{SeedBook, SeedVerifier};

/// p2p channel of simplex votes.
pub const CHANNEL_VOTE: u64 = 0;
/// p2p channel of simplex certificates.
pub const CHANNEL_CERTIFICATE: u64 = 1;
/// p2p channel of simplex certificate fetches.
pub const CHANNEL_RESOLVER: u64 = 2;
/// p2p channel of block broadcast.
pub const CHANNEL_BROADCAST: u64 = 3;
/// p2p channel of marshal backfill (finalized blocks and certificates).
pub const CHANNEL_BACKFILL: u64 = 4;
/// p2p channel of key-resharing dealings and acknowledgements.
pub const CHANNEL_DKG: u64 = 6;

/// Why a validator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The genesis file is unusable.
    #[error("genesis: {0}")]
    Genesis(#[from] agora_ledger::GenesisError),
    /// An archive could not be opened.
    #[error("storage: {0}")]
    Storage(String),
    /// This validator is not in the participant set.
    #[error("validator is not a participant")]
    NotParticipant,
    /// The ledger view does not start at this genesis.
    #[error("ledger view starts at another genesis")]
    LedgerMismatch,
    /// The private resharing store could not open.
    #[error(transparent)]
    Secrets(#[from] crate::epochs::SecretStoreError),
    /// The genesis DKG produced no usable threshold key.
    #[error(transparent)]
    GenesisDkg(#[from] crate::genesis_dkg::GenesisDkgError),
    /// A dealt (single-validator devnet) genesis was given several validators.
    #[error("a dealt genesis is for one validator only, not {0}; several validators run the genesis DKG")]
    DealerNeedsOneValidator(usize),
    /// A genesis validator's key is not an ed25519 public key.
    #[error("genesis validator key {0} is not an ed25519 public key")]
    BadValidatorKey(String),
    /// Two genesis validators share a key.
    #[error("the genesis names a validator key twice")]
    DuplicateValidators,
    /// A joiner was started without the chain's epoch 0.
    #[error("a joining validator needs the chain's genesis epoch file")]
    NoGenesisEpoch,
    /// The given epoch 0 does not decode.
    #[error("genesis epoch does not decode: {0}")]
    BadGenesisEpoch(String),
}

/// Consensus timing; defaults follow commonware's bridge example scaled for a LAN.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Time a leader has to propose before validators vote to skip the view.
    pub leader: Duration,
    /// Time to certify a notarized proposal.
    pub certification: Duration,
    /// Interval between re-broadcasts of a timed-out view's votes.
    pub retry: Duration,
    /// Timeout of one fetch of missing certificates or blocks.
    pub fetch: Duration,
    /// Time after which a silent leader's later terms are skipped.
    pub skip: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            retry: Duration::from_secs(10),
            fetch: Duration::from_secs(1),
            skip: Duration::from_secs(11),
        }
    }
}

/// The six p2p channels a validator uses (a sender/receiver pair each).
pub struct Channels<S, R> {
    /// [`CHANNEL_VOTE`].
    pub vote: (S, R),
    /// [`CHANNEL_CERTIFICATE`].
    pub certificate: (S, R),
    /// [`CHANNEL_RESOLVER`].
    pub resolver: (S, R),
    /// [`CHANNEL_BROADCAST`].
    pub broadcast: (S, R),
    /// [`CHANNEL_BACKFILL`].
    pub backfill: (S, R),
    /// [`CHANNEL_DKG`].
    pub dkg: (S, R),
}

/// Everything one validator needs besides the runtime and the network.
pub struct ValidatorConfig<T: TxSource> {
    /// This validator's keys.
    pub keys: ValidatorKeys,
    /// Epoch 0: the genesis threshold key and committee.
    pub genesis_epoch: EpochInfo,
    /// Post-states of blocks, starting at this genesis; shared with whoever
    /// else reads the ledger's elected committees (the address book).
    pub ledger: LedgerView,
    /// Blocks per epoch; the committee and the key shares change at epoch ends.
    pub blocks_per_epoch: NonZeroU64,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Prefix of every storage partition; unique per validator sharing a storage backend.
    pub partition_prefix: String,
    /// Where proposals get transactions.
    pub txs: T,
    /// Block limits (identical on every validator).
    pub limits: BlockLimits,
    /// Consensus timing.
    pub timeouts: Timeouts,
}

/// Largest p2p message any channel carries for up to [`MAX_PARTICIPANTS`] validators.
pub fn max_message_size(block_cfg: &BlockCfg) -> u32 {
    let n = MAX_PARTICIPANTS.get();
    let dkg = commonware_glue::dkg::types::Message::<
        commonware_cryptography::bls12381::primitives::variant::MinSig,
        PublicKey,
    >::max_encode_size(MAX_PARTICIPANTS);
    commonware_p2p::max_message_size(&[
        simplex::max_payload_size::<Scheme, crate::block::Digest>(n),
        marshal::max_payload_size::<Standard<ConsensusBlock>, Scheme>(n, block_cfg),
    ])
    .max(u32::try_from(dkg + 16).unwrap_or(u32::MAX))
}

/// The block codec configuration for `genesis` (with epoch 0 `genesis_epoch`) under `limits`.
pub fn block_cfg(genesis: &Genesis, genesis_epoch: &EpochInfo, limits: &BlockLimits) -> BlockCfg {
    BlockCfg {
        max_block_bytes: limits.max_block_bytes,
        genesis: genesis.hash(),
        genesis_info: epoch_info_hash(genesis_epoch),
    }
}

fn immutable_cfg<C>(
    prefix: &str,
    name: &str,
    page_cache: CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    let buffer = NZUsize!(1 << 16);
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1 << 20,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config,
        replay_buffer: buffer,
        freezer_key_write_buffer: buffer,
        freezer_value_write_buffer: buffer,
        ordinal_write_buffer: buffer,
    }
}

/// Start a validator: block buffer, marshal, archives, key resharing, one
/// simplex per epoch and finalized delivery, all spawned as children of
/// `context` (aborting its task stops everything).
///
/// `manager` activates each epoch's peers; `peer_provider` tells the block
/// buffer and backfill whom to talk to.
///
/// Returns the handles of the long-running tasks.
#[allow(clippy::too_many_arguments)]
pub async fn start_validator<E, T, K, S, R, P, M, B>(
    context: E,
    config: ValidatorConfig<T>,
    sink: K,
    peer_provider: P,
    manager: M,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Vec<Handle<()>>, EngineError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor + Network,
    T: TxSource,
    K: FinalizedSink,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    M: Manager<PublicKey = PublicKey, Directory = Unit> + Clone,
    B: Blocker<PublicKey = PublicKey>,
{
    let me = config.keys.public_key();
    if config.genesis.state()?.root() != config.ledger.genesis().root() {
        return Err(EngineError::LedgerMismatch);
    }
    let block_cfg = block_cfg(&config.genesis, &config.genesis_epoch, &config.limits);
    let prefix = config.partition_prefix.clone();
    let page_cache = CacheRef::new(NZU16!(16_384), NZUsize!(1_024));
    let buffer: NonZeroUsize = NZUsize!(1 << 16);
    let mailbox = NZUsize!(1024);
    let t = config.timeouts;
    let per_epoch = config.blocks_per_epoch;
    let epocher = FixedEpocher::new(per_epoch);

    // Epoch 0's scheme, and the genesis share kept where resharing reads it.
    let registry = SchemeRegistry::default();
    let genesis_players = config.genesis_epoch.output.players().clone();
    let mut secrets = DurableSecretStore::open(
        context.child("secrets"),
        format!("{prefix}-secrets"),
        &commonware_codec::Encode::encode(&config.keys.identity),
    )
    .await?;
    let genesis_signer = config
        .keys
        .genesis
        .as_ref()
        .filter(|_| genesis_players.position(&me).is_some());
    if let Some(signer) = genesis_signer {
        if secrets.get_share(Epoch::zero()).await.is_none() {
            secrets.put_share(Epoch::zero(), signer.share.clone()).await;
        }
        registry.insert(Epoch::zero(), signer.scheme.clone());
    } else {
        registry.insert(
            Epoch::zero(),
            Scheme::verifier(
                NAMESPACE,
                genesis_players.clone(),
                config.genesis_epoch.output.public().clone(),
            ),
        );
    }

    // Marshal backfill resolver (finalized blocks and certificates on request).
    let resolver = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peer_provider.clone(),
            blocker: blocker.clone(),
            mailbox_size: mailbox,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );

    // Block dissemination.
    let (broadcast_engine, block_buffer) =
        buffered::Engine::<_, PublicKey, ConsensusBlock, _, _>::new(
            context.child("broadcast"),
            buffered::Config {
                public_key: me.clone(),
                mailbox_size: mailbox,
                deque_size: 16,
                priority: false,
                codec_config: block_cfg,
                peer_provider,
                strategy: Sequential,
            },
        );
    let h_broadcast = broadcast_engine.start(channels.broadcast);

    // Finalized archives.
    let finalizations = immutable::Archive::init(
        context.child("finalizations_by_height"),
        immutable_cfg(
            &prefix,
            "finalizations",
            page_cache.clone(),
            // This scheme's certificates need no codec configuration.
            (),
        ),
    )
    .await
    .map_err(|e| EngineError::Storage(e.to_string()))?;
    let blocks = immutable::Archive::init(
        context.child("finalized_blocks"),
        immutable_cfg(&prefix, "blocks", page_cache.clone(), block_cfg),
    )
    .await
    .map_err(|e| EngineError::Storage(e.to_string()))?;

    // Marshal: orders finalized blocks, backfills gaps, persists. Resharing
    // keeps the group key, so one verifier checks every epoch's certificates.
    let group_key = *config.genesis_epoch.output.public().public();
    let genesis_block = ConsensusBlock::Genesis {
        hash: config.genesis.hash(),
        info: Box::new(config.genesis_epoch.clone()),
    };
    let genesis_digest = to_digest(config.genesis.hash());
    let (marshal_actor, marshal_mailbox, _floor) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<Scheme, Epoch>::new(Scheme::certificate_verifier(
                NAMESPACE, group_key,
            )),
            epocher: epocher.clone(),
            start: marshal::Start::Genesis(Digested::precomputed(genesis_block, genesis_digest)),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: mailbox,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: NZU64!(10),
            page_cache: page_cache.clone(),
            replay_buffer: buffer,
            key_write_buffer: buffer,
            value_write_buffer: buffer,
            block_codec_config: block_cfg,
            max_repair: NZUsize!(10),
            max_pending_acks: NZUsize!(1),
            strategy: Sequential,
        },
    )
    .await;

    // Key resharing: dealings over p2p in each epoch's first half, dealer logs
    // in blocks from the midpoint, the next epoch's key in its final block.
    let state_sync = StateSyncPlan::init(
        context.child("dkg_state_sync_plan"),
        StateSyncConfig {
            partition_prefix: prefix.clone(),
            max_participants: MAX_PARTICIPANTS,
            max_supported_mode: MAX_SHARING_MODE,
        },
        None,
    )
    .await;
    let (fence, gate) = Fence::new();
    let (reshare_actor, reshare_mailbox) = reshare::Actor::new(
        context.child("reshare"),
        reshare::Config {
            signer: config.keys.identity.clone(),
            manager: manager.clone(),
            blocker: blocker.clone(),
            participants_provider: LedgerCommittee::new(
                config.ledger.clone(),
                per_epoch,
                genesis_players.clone(),
            ),
            secret_store: secrets,
            strategy: Sequential,
            registrar: SchemeRegistrar::new(registry.clone()),
            marshal: marshal_mailbox.clone(),
            state_sync: state_sync.clone(),
            fence,
            namespace: NAMESPACE,
            sharing_mode: Mode::NonZeroCounter,
            reveal: Reveal::V1,
            mailbox_size: mailbox,
            partition_prefix: format!("{prefix}-reshare"),
            page_cache: page_cache.clone(),
            write_buffer: buffer,
            replay_buffer: buffer,
            max_participants: MAX_PARTICIPANTS,
            blocks_per_epoch: per_epoch,
        },
    );
    let h_reshare = reshare_actor.start(channels.dkg);

    // The application, wrapped for resharing payloads and for simplex.
    let ledger = config.ledger;
    // Parent seeds: copied from the engine's certificates by the tap, and
    // from finalizations by the delivery task; carried in every proposal.
    let seeds = SeedBook::default();
    let app = AgoraApp::new(ledger.clone(), config.txs.clone(), config.limits)
        .with_seeds(seeds.clone(), SeedVerifier::new(group_key));
    let inline = Inline::new(
        context.child("inline"),
        reshare::Application::new(app, reshare_mailbox.clone(), per_epoch),
        marshal_mailbox.clone(),
        epocher,
    );
    let inline = SeedTap::new(inline, seeds.clone());

    let (orchestrator_actor, orchestrator_mailbox) = orchestrator::Actor::new(
        context.child("orchestrator"),
        orchestrator::Config {
            oracle: blocker,
            manager,
            provider: registry,
            marshal: marshal_mailbox.clone(),
            application: inline,
            strategy: Sequential,
            simplex: orchestrator::SimplexConfig {
                elector: RoundRobin::<Sha256>::default(),
                mailbox_size: mailbox,
                replay_buffer: buffer,
                write_buffer: buffer,
                page_cache,
                leader_timeout: t.leader,
                certification_timeout: t.certification,
                timeout_retry: t.retry,
                fetch_timeout: NonZeroDuration::new(t.fetch)
                    .unwrap_or(NZDuration!(Duration::from_secs(1))),
                fetch_retry_delay: Duration::from_millis(100),
                view_retention: ViewDelta::new(10),
                skip: SkipPolicy::Enabled {
                    timeout: t.skip,
                    budget: SkipBudget::Participants,
                },
                forward: ForwardPolicy::Disabled,
                track_historical_votes: false,
            },
            gate,
            state_sync,
            blocks_per_epoch: per_epoch,
            mailbox_size: mailbox,
            partition_prefix: format!("{prefix}-orchestrator"),
        },
    );
    let h_orchestrator =
        orchestrator_actor.start(channels.vote, channels.certificate, channels.resolver);

    // Finalized delivery: the chain node, the orchestrator and the reshare actor
    // each acknowledge every finalized block.
    let (block_tx, block_rx) = mpsc::unbounded_channel();
    let reporters = Reporters::from((
        BlockForwarder { tx: block_tx },
        Reporters::from((orchestrator_mailbox, reshare_mailbox)),
    ));
    let h_marshal = marshal_actor.start(reporters, block_buffer, resolver);
    let delivery = Delivery {
        sink,
        ledger,
        txs: config.txs,
        marshal: marshal_mailbox,
        seeds,
    };
    let h_delivery = context
        .child("delivery")
        .spawn(move |_| async move { delivery.run(block_rx).await });
    Ok(vec![
        h_broadcast,
        h_marshal,
        h_reshare,
        h_orchestrator,
        h_delivery,
    ])
}
