//! Wiring of one validator: block buffer, marshal (with its archives and
//! backfill resolver) and simplex, over any p2p network and runtime.

use std::num::NonZeroUsize;
use std::time::Duration;

use agora_ledger::Genesis;
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self, core::Actor as MarshalActor, resolver::p2p as marshal_resolver, standard::Inline,
        standard::Standard,
    },
    simplex::{self, elector::RoundRobin, Floor, ForwardPolicy, SkipBudget, SkipPolicy},
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{certificate::ConstantProvider, Digested, Sha256};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    buffer::paged::CacheRef, Clock, Handle, Metrics, Spawner, Storage, Supervisor,
};
use commonware_storage::archive::immutable;
use commonware_utils::{
    channel::mpsc, ordered::Set, NZDuration, NZUsize, NonZeroDuration, NZU16, NZU64,
};
use rand_core010::CryptoRng;

use crate::application::{AgoraApp, BlockLimits};
use crate::block::{to_digest, BlockCfg, ConsensusBlock};
use crate::finalized::{BlockForwarder, Delivery, FinalizedSink};
use crate::keys::{PublicKey, Scheme, ValidatorKeys};
use crate::ledger::LedgerView;
use crate::mempool::TxSource;

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

/// The five p2p channels a validator uses (a sender/receiver pair each).
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
}

/// Everything one validator needs besides the runtime and the network.
pub struct ValidatorConfig<T: TxSource> {
    /// This validator's keys.
    pub keys: ValidatorKeys,
    /// All validators.
    pub participants: Set<PublicKey>,
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

/// Largest p2p message any channel carries for `participants` validators.
pub fn max_message_size(participants: usize, block_cfg: &BlockCfg) -> u32 {
    let n = u32::try_from(participants).unwrap_or(u32::MAX);
    commonware_p2p::max_message_size(&[
        simplex::max_payload_size::<Scheme, crate::block::Digest>(n),
        marshal::max_payload_size::<Standard<ConsensusBlock>, Scheme>(n, block_cfg),
    ])
}

/// The block codec configuration for `genesis` under `limits`.
pub fn block_cfg(genesis: &Genesis, limits: &BlockLimits) -> BlockCfg {
    BlockCfg {
        max_block_bytes: limits.max_block_bytes,
        genesis: genesis.hash(),
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

/// Start a validator: block buffer, marshal, archives, simplex and finalized delivery,
/// all spawned as children of `context` (aborting its task stops everything).
///
/// Returns the handles of the long-running tasks.
#[allow(clippy::too_many_arguments)]
pub async fn start_validator<E, T, K, S, R, P, B>(
    context: E,
    config: ValidatorConfig<T>,
    sink: K,
    peer_provider: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Vec<Handle<()>>, EngineError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    T: TxSource,
    K: FinalizedSink,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let me = config.keys.public_key();
    if config.participants.position(&me).is_none() {
        return Err(EngineError::NotParticipant);
    }
    let genesis_state = config.genesis.state()?;
    let block_cfg = block_cfg(&config.genesis, &config.limits);
    let prefix = config.partition_prefix.clone();
    let page_cache = CacheRef::new(NZU16!(16_384), NZUsize!(1_024));
    let buffer: NonZeroUsize = NZUsize!(1 << 16);
    let mailbox = NZUsize!(1024);
    let t = config.timeouts;

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

    // Marshal: orders finalized blocks, backfills gaps, persists.
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    let genesis_block = ConsensusBlock::Genesis(config.genesis.hash());
    let genesis_digest = to_digest(config.genesis.hash());
    let (marshal_actor, marshal_mailbox, _floor) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<Scheme, Epoch>::new(config.keys.scheme.clone()),
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

    // The application, wrapped so simplex sees Automaton + Relay + Reporter.
    let ledger = LedgerView::new(genesis_state);
    let app = AgoraApp::new(ledger.clone(), config.txs.clone(), config.limits);
    let inline = Inline::new(
        context.child("inline"),
        app,
        marshal_mailbox.clone(),
        epocher,
    );

    let engine = simplex::Engine::new(
        context.child("engine"),
        simplex::Config {
            scheme: config.keys.scheme.clone(),
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: inline.clone(),
            relay: inline.clone(),
            reporter: inline,
            partition: format!("{prefix}-simplex"),
            mailbox_size: mailbox,
            epoch: Epoch::zero(),
            floor: Floor::Genesis(genesis_digest),
            replay_buffer: buffer,
            write_buffer: buffer,
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
            page_cache,
            strategy: Sequential,
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );

    // Finalized delivery.
    let (block_tx, block_rx) = mpsc::unbounded_channel();
    let h_marshal = marshal_actor.start(BlockForwarder { tx: block_tx }, block_buffer, resolver);
    let h_engine = engine.start(channels.vote, channels.certificate, channels.resolver);
    let delivery = Delivery {
        sink,
        ledger,
        txs: config.txs,
        marshal: marshal_mailbox,
    };
    let h_delivery = context
        .child("delivery")
        .spawn(move |_| async move { delivery.run(block_rx).await });
    Ok(vec![h_broadcast, h_marshal, h_engine, h_delivery])
}
