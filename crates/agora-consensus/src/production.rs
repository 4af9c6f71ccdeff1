//! Production entry point: a validator on the tokio runtime with
//! authenticated `lookup` p2p (peers known by address), devnet keys dealt from a seed.

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
use crate::engine::{
    block_cfg, max_message_size, start_validator, Channels, EngineError, Timeouts, ValidatorConfig,
    CHANNEL_BACKFILL, CHANNEL_BROADCAST, CHANNEL_CERTIFICATE, CHANNEL_DKG, CHANNEL_RESOLVER,
    CHANNEL_VOTE,
};
use crate::finalized::FinalizedSink;
use crate::gossip::GossipReceiver;
use crate::keys::{devnet_identity, devnet_keys, PrivateKey, PublicKey, ValidatorKeys, NAMESPACE};
use crate::ledger::LedgerView;
use crate::mempool::TxSource;

/// Which validator a process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seat {
    /// Validator `i` of the genesis set: dealt its keys, listening at `peers[i]`.
    Genesis(usize),
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
    /// The ed25519 public key this validator signs consensus with (what
    /// `AnnounceValidator.consensus_key` names), given the devnet dealing seed.
    pub fn consensus_key(&self, devnet_seed: u64) -> [u8; 32] {
        let key = match self {
            Seat::Genesis(index) => devnet_identity(devnet_seed, *index),
            Seat::Joiner { key_seed, .. } => joiner_identity(key_seed),
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(key.public_key().as_ref());
        out
    }
}

/// The consensus identity a joiner with `key_seed` signs with (what it announces).
pub fn joiner_identity(key_seed: &[u8; 32]) -> PrivateKey {
    use commonware_codec::DecodeExt as _;
    // Every 32-byte string is a valid ed25519 seed.
    PrivateKey::decode(bytes::Bytes::copy_from_slice(key_seed))
        .expect("a 32-byte seed decodes as an ed25519 private key")
}

/// Configuration of a devnet validator process.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Seed the devnet keys are dealt from (identical on every validator).
    pub devnet_seed: u64,
    /// Which validator this process is.
    pub seat: Seat,
    /// Listen address of every genesis validator, by index.
    pub peers: Vec<SocketAddr>,
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
    let n = config.peers.len();
    let keys = devnet_keys(config.devnet_seed, n).map_err(|_| EngineError::NotParticipant)?;
    let (me_keys, listen) = match &config.seat {
        Seat::Genesis(index) => (
            keys.validators
                .get(*index)
                .cloned()
                .ok_or(EngineError::NotParticipant)?,
            config.peers[*index],
        ),
        Seat::Joiner { key_seed, listen } => {
            (ValidatorKeys::joiner(joiner_identity(key_seed)), *listen)
        }
    };
    let peers: Map<_, Address> = config
        .peers
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            (
                devnet_identity(config.devnet_seed, i).public_key(),
                Address::from(*addr),
            )
        })
        .try_collect()
        .map_err(|_| EngineError::NotParticipant)?;
    let genesis_epoch = keys.genesis_epoch();
    let max_message = max_message_size(&block_cfg(&config.genesis, &genesis_epoch, &config.limits));
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: me_keys.identity.clone(),
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
    runner.start(|context| async move {
        let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
        let _ = oracle.track(0, peers.clone());
        let book = AddressBook::new(oracle.clone(), peers, ledger.clone());
        let quota = Quota::per_second(NZU32!(256));
        let channels = Channels {
            vote: network.register(CHANNEL_VOTE, quota),
            certificate: network.register(CHANNEL_CERTIFICATE, quota),
            resolver: network.register(CHANNEL_RESOLVER, quota),
            broadcast: network.register(CHANNEL_BROADCAST, quota),
            backfill: network.register(CHANNEL_BACKFILL, quota),
            dkg: network.register(CHANNEL_DKG, quota),
        };
        let (gossip_out, gossip_in) = network.register(CHANNEL_TXS, quota);
        let h_network = network.start();
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
        let mut handles = start_validator(
            context.child("validator"),
            validator,
            sink,
            oracle.clone(),
            book,
            oracle,
            channels,
        )
        .await?;
        handles.push(h_network);
        let h_gossip = context
            .child("gossip")
            .spawn(move |_| crate::gossip::run(gossip_out, gossip_in, gossip, txs));
        handles.push(h_gossip);
        let stop = context.child("shutdown").spawn(move |_| shutdown);
        handles.push(stop);
        let _ = Handle::select(handles).await;
        Ok(())
    })
}
