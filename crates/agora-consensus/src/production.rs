//! Production entry point: a validator on the tokio runtime with
//! authenticated `lookup` p2p (peers known by address). A multi-validator
//! genesis generates its threshold key with the genesis DKG; only a
//! single-validator devnet has it dealt from a seed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_ledger::Genesis;
use commonware_actor::Feedback;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _};
use commonware_p2p::{
    authenticated::lookup, Address, AddressableManager, AddressableTrackedPeers,
    PeerSetSubscription, TrackedPeers,
};
use commonware_runtime::{tokio, Handle, Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{ordered::Map, NZUsize, TryCollect, NZU32};
use tracing::warn;

use crate::application::BlockLimits;
use crate::block::EpochInfo;
use crate::engine::{
    max_message_size, start_validator, Channels, EngineError, Timeouts, ValidatorConfig,
    CHANNEL_BACKFILL, CHANNEL_BROADCAST, CHANNEL_CERTIFICATE, CHANNEL_DKG, CHANNEL_RESOLVER,
    CHANNEL_VOTE,
};
use crate::finalized::FinalizedSink;
use crate::genesis_dkg::{
    encode_genesis_epoch, group_identity, run_genesis_dkg, GenesisDkgConfig, GENESIS_DKG_BLOCKS,
    GENESIS_DKG_CHANNELS,
};
use crate::gossip::GossipReceiver;
use crate::keys::{devnet_identity, devnet_keys, PrivateKey, PublicKey, ValidatorKeys, NAMESPACE};
use crate::ledger::LedgerView;
use crate::mempool::TxSource;

/// Which validator a process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seat {
    /// The only validator of a single-validator devnet: its identity and the
    /// whole threshold key are dealt from `seed`. A trusted dealer is
    /// acceptable only here, where there is nobody else to distrust.
    Dealt {
        /// The dealing seed.
        seed: u64,
    },
    /// A validator of a multi-validator genesis, with its own identity key;
    /// the threshold key comes from the genesis DKG among the genesis validators.
    Genesis {
        /// Seed of its own ed25519 identity key (its key file).
        key_seed: [u8; 32],
    },
    /// A validator outside the genesis set, following the chain until the
    /// ledger elects it: its own consensus key and p2p listen address.
    Joiner {
        /// Seed of its ed25519 consensus key.
        key_seed: [u8; 32],
        /// Where it listens for peers (what it announces on the ledger).
        listen: SocketAddr,
    },
}

impl Seat {
    /// The ed25519 identity this validator signs consensus with.
    pub fn identity(&self) -> PrivateKey {
        match self {
            Seat::Dealt { seed } => devnet_identity(*seed, 0),
            Seat::Genesis { key_seed } | Seat::Joiner { key_seed, .. } => joiner_identity(key_seed),
        }
    }

    /// The ed25519 public key this validator signs consensus with (what
    /// `AnnounceValidator.consensus_key` and the genesis validator list name).
    pub fn consensus_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.identity().public_key().as_ref());
        out
    }
}

/// The consensus identity a validator with `key_seed` signs with.
pub fn joiner_identity(key_seed: &[u8; 32]) -> PrivateKey {
    use commonware_codec::DecodeExt as _;
    // Every 32-byte string is a valid ed25519 seed.
    PrivateKey::decode(bytes::Bytes::copy_from_slice(key_seed))
        .expect("a 32-byte seed decodes as an ed25519 private key")
}

/// One genesis validator as the genesis names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenesisPeer {
    /// Its public ed25519 identity key.
    pub key: [u8; 32],
    /// Its p2p listen address.
    pub addr: SocketAddr,
}

/// File in the storage directory holding epoch 0 (hex of its encoding), written
/// by every genesis validator once the genesis key exists; joiners load it.
pub const GENESIS_EPOCH_FILE: &str = "genesis-epoch.hex";
/// File in the storage directory holding the validator set's public identity
/// (hex BLS group key): what light clients trust.
pub const IDENTITY_FILE: &str = "identity.hex";

/// Configuration of a devnet validator process.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Which validator this process is.
    pub seat: Seat,
    /// Every genesis validator (identity key and listen address), in order.
    /// For [`Seat::Dealt`] the single entry's key is ignored (it is dealt).
    pub peers: Vec<GenesisPeer>,
    /// Epoch 0 (the bytes of a [`GENESIS_EPOCH_FILE`], hex-decoded): required
    /// for [`Seat::Joiner`], which takes no part in producing it; optional for
    /// [`Seat::Genesis`], where it lets a validator whose consensus storage
    /// was lost after the DKG follow the chain (without a share until the
    /// next reshare) instead of re-entering the finished ceremony, and is
    /// checked against the DKG outcome otherwise.
    pub genesis_epoch: Option<Vec<u8>>,
    /// Directory of consensus storage.
    pub storage_dir: PathBuf,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Block limits (identical on every validator).
    pub limits: BlockLimits,
    /// Consensus timing.
    pub timeouts: Timeouts,
    /// Tokio worker threads.
    pub worker_threads: usize,
}

/// Consensus epochs are the ledger's committee epochs (`params.committee.epoch_blocks`;
/// 0, "never elect", becomes one endless epoch).
pub fn blocks_per_epoch(genesis: &Genesis) -> std::num::NonZeroU64 {
    std::num::NonZeroU64::new(genesis.params.committee.epoch_blocks)
        .unwrap_or(std::num::NonZeroU64::MAX)
}

/// Activates each epoch's peers on the `lookup` network, dialing them at the
/// addresses this validator knows them by: the configured genesis peers, and
/// the endpoints validators announced on the ledger.
#[derive(Clone)]
pub struct AddressBook<M> {
    oracle: M,
    addresses: Map<PublicKey, Address>,
    ledger: LedgerView,
}

impl<M> std::fmt::Debug for AddressBook<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook")
            .field("configured", &self.addresses.len())
            .finish_non_exhaustive()
    }
}

impl<M> AddressBook<M> {
    /// Peers in `addresses` are dialed there, others at their announced
    /// endpoint in `ledger`'s finalized state; the rest are skipped (unreachable).
    pub fn new(oracle: M, addresses: Map<PublicKey, Address>, ledger: LedgerView) -> Self {
        Self {
            oracle,
            addresses,
            ledger,
        }
    }

    /// Where `peer` is reached, if known.
    pub fn address(&self, peer: &PublicKey) -> Option<Address> {
        if let Some(address) = self.addresses.get_value(peer) {
            return Some(address.clone());
        }
        let state = self.ledger.finalized();
        let endpoint = state
            .validator_endpoints
            .values()
            .find(|e| e.consensus_key.0.as_slice() == peer.as_ref())?;
        match endpoint.p2p_addr.parse::<SocketAddr>() {
            Ok(addr) => Some(Address::from(addr)),
            Err(_) => {
                warn!(addr = %endpoint.p2p_addr, "announced endpoint is not an IP:port; peer skipped");
                None
            }
        }
    }

    fn resolve(
        &self,
        peers: &commonware_utils::ordered::Set<PublicKey>,
    ) -> Map<PublicKey, Address> {
        Map::from_iter_dedup(
            peers
                .iter()
                .filter_map(|peer| self.address(peer).map(|address| (peer.clone(), address))),
        )
    }
}

impl<M: AddressableManager<PublicKey = PublicKey>> commonware_p2p::Provider for AddressBook<M> {
    type PublicKey = PublicKey;

    async fn peer_set(&mut self, id: u64) -> Option<TrackedPeers<PublicKey>> {
        self.oracle.peer_set(id).await
    }

    async fn subscribe(&mut self) -> PeerSetSubscription<PublicKey> {
        self.oracle.subscribe().await
    }
}

impl<M: AddressableManager<PublicKey = PublicKey>> commonware_p2p::Manager for AddressBook<M> {
    fn track<R>(&mut self, id: u64, peers: R) -> Feedback
    where
        R: Into<TrackedPeers<PublicKey>> + Send,
    {
        let peers = peers.into();
        let tracked = AddressableTrackedPeers::new(
            self.resolve(&peers.primary),
            self.resolve(&peers.secondary),
        );
        self.oracle.track(id, tracked)
    }
}

/// p2p channel of transaction gossip.
pub const CHANNEL_TXS: u64 = 5;

/// Run a validator until `shutdown` resolves or one of its tasks stops (blocking).
/// Transactions sent on `gossip`'s sender reach every other validator's `txs`.
pub fn run_validator<T, K>(
    config: NodeConfig,
    txs: T,
    sink: K,
    gossip: GossipReceiver,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EngineError>
where
    T: TxSource,
    K: FinalizedSink,
{
    let identity = config.seat.identity();
    let me = identity.public_key();
    let mut peers = config.peers.clone();
    if let Seat::Dealt { .. } = config.seat {
        if peers.len() != 1 {
            return Err(EngineError::DealerNeedsOneValidator(peers.len()));
        }
        peers[0].key = config.seat.consensus_key();
    }
    let keyed: Vec<(PublicKey, SocketAddr)> = peers
        .iter()
        .map(|p| {
            use commonware_codec::DecodeExt as _;
            PublicKey::decode(bytes::Bytes::copy_from_slice(&p.key))
                .map(|k| (k, p.addr))
                .map_err(|_| EngineError::BadValidatorKey(hex::encode(p.key)))
        })
        .collect::<Result<_, _>>()?;
    let listen = match &config.seat {
        Seat::Joiner { listen, .. } => *listen,
        _ => keyed
            .iter()
            .find(|(k, _)| *k == me)
            .map(|(_, addr)| *addr)
            .ok_or(EngineError::NotParticipant)?,
    };
    let peer_map: Map<_, Address> = keyed
        .iter()
        .map(|(k, addr)| (k.clone(), Address::from(*addr)))
        .try_collect()
        .map_err(|_| EngineError::DuplicateValidators)?;
    let participants = peer_map.keys().clone();
    // Where epoch 0 comes from: dealt (one-validator devnet), given (joiner),
    // or generated by the genesis DKG once the network is up.
    let known: Option<(ValidatorKeys, EpochInfo)> = match &config.seat {
        Seat::Dealt { seed } => {
            let keys = devnet_keys(*seed, 1).map_err(|_| EngineError::NotParticipant)?;
            let me_keys = keys.validators[0].clone();
            Some((me_keys, keys.genesis_epoch()))
        }
        Seat::Joiner { .. } => {
            let bytes = config
                .genesis_epoch
                .as_deref()
                .ok_or(EngineError::NoGenesisEpoch)?;
            let epoch = crate::genesis_dkg::decode_genesis_epoch(bytes)
                .map_err(|e| EngineError::BadGenesisEpoch(e.to_string()))?;
            Some((ValidatorKeys::joiner(identity.clone()), epoch))
        }
        Seat::Genesis { .. } => match &config.genesis_epoch {
            // Its consensus storage (with its share and the DKG chain) is
            // gone, but the DKG's outcome is known: it cannot take part in a
            // finished ceremony, so it follows epoch 0 without a share (the
            // next reshare deals it one).
            Some(bytes) if !config.storage_dir.join(GENESIS_EPOCH_FILE).exists() => {
                let epoch = crate::genesis_dkg::decode_genesis_epoch(bytes)
                    .map_err(|e| EngineError::BadGenesisEpoch(e.to_string()))?;
                if epoch.players.position(&me).is_none() {
                    return Err(EngineError::NotParticipant);
                }
                warn!("no genesis DKG state in this storage: following epoch 0 without a share");
                Some((ValidatorKeys::joiner(identity.clone()), epoch))
            }
            // Run the DKG, or recover its outcome and the share from storage.
            _ => None,
        },
    };
    // Message bounds do not depend on epoch 0 (the DKG may not have run yet).
    let sizing = crate::block::BlockCfg {
        max_block_bytes: config.limits.max_block_bytes,
        genesis: config.genesis.hash(),
        genesis_info: agora_types::Hash32([0; 32]),
    };
    let max_message = max_message_size(&sizing).max(
        u32::try_from(commonware_glue::dkg::bootstrap::max_payload_size::<
            commonware_cryptography::bls12381::primitives::variant::MinSig,
            commonware_utils::sequence::Unit,
        >(
            crate::block::MAX_PARTICIPANTS,
            crate::block::MAX_SHARING_MODE,
        ))
        .unwrap_or(u32::MAX),
    );
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: identity.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let p2p = lookup::Config::local(
        handshake,
        &[NAMESPACE, b"_P2P"].concat(),
        listen,
        // An epoch tracks its dealers, players and next players: up to three committees.
        NZUsize!(3 * crate::block::MAX_PARTICIPANTS.get() as usize),
        max_message,
        NZUsize!(1024),
    );
    let runner = tokio::Runner::new(
        tokio::Config::new()
            .with_storage_directory(config.storage_dir.clone())
            .with_worker_threads(config.worker_threads.max(1)),
    );
    let ledger = LedgerView::new(config.genesis.state()?);
    let storage_dir = config.storage_dir.clone();
    runner.start(|context| async move {
        let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
        if known.is_some() {
            // The genesis DKG tracks the genesis validators as peer set 0 itself.
            let _ = oracle.track(0, peer_map.clone());
        }
        let book = AddressBook::new(oracle.clone(), peer_map, ledger.clone());
        let quota = Quota::per_second(NZU32!(256));
        let channels = Channels {
            vote: network.register(CHANNEL_VOTE, quota),
            certificate: network.register(CHANNEL_CERTIFICATE, quota),
            resolver: network.register(CHANNEL_RESOLVER, quota),
            broadcast: network.register(CHANNEL_BROADCAST, quota),
            backfill: network.register(CHANNEL_BACKFILL, quota),
            dkg: network.register(CHANNEL_DKG, quota),
        };
        let [g_vote, g_certificate, g_resolver, g_broadcast, g_backfill, g_dkg] =
            GENESIS_DKG_CHANNELS;
        let genesis_channels = Channels {
            vote: network.register(g_vote, quota),
            certificate: network.register(g_certificate, quota),
            resolver: network.register(g_resolver, quota),
            broadcast: network.register(g_broadcast, quota),
            backfill: network.register(g_backfill, quota),
            dkg: network.register(g_dkg, quota),
        };
        let (gossip_out, gossip_in) = network.register(CHANNEL_TXS, quota);
        let h_network = network.start();
        let mut handles = vec![h_network];
        let mut stop = context.child("shutdown").spawn(move |_| shutdown);
        let (me_keys, genesis_epoch) = match known {
            Some(known) => known,
            None => {
                let dkg = run_genesis_dkg(
                    context.child("genesis_dkg"),
                    GenesisDkgConfig {
                        identity: identity.clone(),
                        participants,
                        partition_prefix: "agora-genesis-dkg".into(),
                        blocks: GENESIS_DKG_BLOCKS,
                    },
                    book.clone(),
                    oracle.clone(),
                    genesis_channels,
                );
                futures::pin_mut!(dkg);
                let dkg = match futures::future::select(dkg, &mut stop).await {
                    futures::future::Either::Left((dkg, _)) => dkg?,
                    // Shut down before the genesis key existed.
                    futures::future::Either::Right(_) => return Ok(()),
                };
                // Keep serving the DKG chain to validators still finishing it.
                handles.push(dkg.handle);
                if let Some(bytes) = &config.genesis_epoch {
                    if *bytes != encode_genesis_epoch(&dkg.genesis_epoch) {
                        return Err(EngineError::BadGenesisEpoch(
                            "the given genesis epoch is not this storage's DKG outcome".into(),
                        ));
                    }
                }
                (dkg.keys, dkg.genesis_epoch)
            }
        };
        record_genesis_epoch(&storage_dir, &genesis_epoch)?;
        let validator = ValidatorConfig {
            keys: me_keys,
            genesis_epoch,
            ledger: ledger.clone(),
            blocks_per_epoch: blocks_per_epoch(&config.genesis),
            genesis: config.genesis,
            partition_prefix: "agora".into(),
            txs: txs.clone(),
            limits: config.limits,
            timeouts: config.timeouts,
        };
        let started = start_validator(
            context.child("validator"),
            validator,
            sink,
            oracle.clone(),
            book,
            oracle,
            channels,
        )
        .await?;
        handles.extend(started);
        let h_gossip = context
            .child("gossip")
            .spawn(move |_| crate::gossip::run(gossip_out, gossip_in, gossip, txs));
        handles.push(h_gossip);
        handles.push(stop);
        let _ = Handle::select(handles).await;
        Ok(())
    })
}

/// Write epoch 0 and the group key into `dir` ([`GENESIS_EPOCH_FILE`],
/// [`IDENTITY_FILE`]), atomically, for joiners and light clients.
pub fn record_genesis_epoch(dir: &std::path::Path, epoch: &EpochInfo) -> Result<(), EngineError> {
    let write = |name: &str, text: String| -> Result<(), EngineError> {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| EngineError::Storage(format!("{}: {e}", path.display())))
    };
    write(GENESIS_EPOCH_FILE, hex::encode(encode_genesis_epoch(epoch)))?;
    write(IDENTITY_FILE, hex::encode(group_identity(epoch)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::{InMemoryTxSource, NoTxs};

    struct NoSink;

    impl FinalizedSink for NoSink {
        fn last_applied(&self) -> Option<agora_ledger::State> {
            None
        }

        fn deliver(&mut self, _: crate::finalized::Finalized) -> Result<(), String> {
            Ok(())
        }
    }

    fn config(seat: Seat, peers: Vec<GenesisPeer>, dir: &std::path::Path) -> NodeConfig {
        NodeConfig {
            seat,
            peers,
            genesis_epoch: None,
            storage_dir: dir.to_path_buf(),
            genesis: agora_testkit::GenesisBuilder::new("agora-test").build(),
            limits: BlockLimits::default(),
            timeouts: Timeouts::default(),
            worker_threads: 1,
        }
    }

    fn unused_dir() -> PathBuf {
        std::env::temp_dir().join("agora-consensus-never-created")
    }

    fn peer(key: [u8; 32], port: u16) -> GenesisPeer {
        GenesisPeer {
            key,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A dealer is refused for more than one validator, and a genesis
    /// validator must be named by the genesis; neither starts anything.
    #[test]
    fn a_dealer_is_for_one_validator_and_genesis_seats_must_be_named() {
        // Refused before any storage is opened.
        let dir = unused_dir();
        let (_, gossip) = crate::gossip::gossip_channel();
        let dealt = Seat::Dealt { seed: 3 };
        let two = vec![peer([1; 32], 1), peer([2; 32], 2)];
        let result = run_validator(config(dealt, two, &dir), NoTxs, NoSink, gossip, async {});
        assert!(matches!(
            result,
            Err(EngineError::DealerNeedsOneValidator(2))
        ));

        let (_, gossip) = crate::gossip::gossip_channel();
        let mine = Seat::Genesis { key_seed: [9; 32] };
        let others = vec![
            peer(Seat::Genesis { key_seed: [1; 32] }.consensus_key(), 1),
            peer(Seat::Genesis { key_seed: [2; 32] }.consensus_key(), 2),
        ];
        let result = run_validator(
            config(mine, others, &dir),
            InMemoryTxSource::new(),
            NoSink,
            gossip,
            async {},
        );
        assert!(matches!(result, Err(EngineError::NotParticipant)));
    }
}
