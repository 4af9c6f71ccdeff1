//! Epochs: which threshold scheme signs each epoch, who takes part in the
//! next ones, and where a validator keeps its private resharing material.
//!
//! commonware-glue's reshare actor rotates the BLS threshold shares every
//! epoch (the group key, and so light clients, stay the same) and its
//! orchestrator runs one simplex instance per epoch. This module supplies the
//! three things it asks of the application: a [`Registrar`] that installs each
//! epoch's scheme into a [`SchemeRegistry`], a [`ParticipantsProvider`]
//! naming future committees from the ledger's stake election
//! ([`LedgerCommittee`]), and a durable [`SecretStore`].

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

use agora_ledger::CommitteeMember;
use commonware_codec::{Decode, Encode};
use commonware_consensus::types::Epoch;
use commonware_cryptography::{
    bls12381::{
        dkg::feldman_desmedt::DealerPrivMsg,
        primitives::{group::Share, variant::MinSig},
    },
    certificate::{Provider, Scoped},
    transcript::Summary,
    PublicKey as PublicKeyTrait,
};
use commonware_glue::dkg::{types::SchemeInfo, ParticipantsProvider, Registrar, SecretStore};
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{self, Metadata};
use commonware_utils::{ordered::Set, sequence::FixedBytes, sequence::Unit};
use tracing::{error, warn};

use crate::keys::{PublicKey, Scheme, NAMESPACE};
use crate::ledger::LedgerView;

/// The consensus scheme of every epoch this node knows, by epoch.
#[derive(Clone, Default)]
pub struct SchemeRegistry {
    schemes: Arc<Mutex<HashMap<Epoch, Arc<Scheme>>>>,
}

impl SchemeRegistry {
    /// Install `scheme` for `epoch` (replacing any earlier one).
    pub fn insert(&self, epoch: Epoch, scheme: Scheme) {
        self.lock().insert(epoch, Arc::new(scheme));
    }

    /// Forget the schemes of epochs before `min`.
    pub fn prune(&self, min: Epoch) {
        self.lock().retain(|epoch, _| *epoch >= min);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Epoch, Arc<Scheme>>> {
        // A poisoned map is still a valid map: take it.
        self.schemes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Provider for SchemeRegistry {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Epoch) -> Option<Scoped<Scheme>> {
        self.lock().get(&scope).cloned().map(Scoped::scheme)
    }

    fn scheme(&self, scope: Epoch) -> Option<Arc<Scheme>> {
        self.lock().get(&scope).cloned()
    }
}

/// The scheme `info` describes: a signer with a share, a member or a verifier.
pub fn scheme_from_info(info: SchemeInfo<MinSig, PublicKey>) -> Option<Scheme> {
    match info {
        SchemeInfo::Verifier {
            participants,
            sharing,
        } => Some(Scheme::verifier(NAMESPACE, participants, sharing)),
        SchemeInfo::Member {
            participants,
            sharing,
            public_key,
        } => Scheme::member(NAMESPACE, participants, sharing, &public_key),
        SchemeInfo::Signer {
            participants,
            sharing,
            share,
        } => Scheme::signer(NAMESPACE, participants, sharing, share),
    }
}

/// Installs the schemes the reshare actor derives into a [`SchemeRegistry`].
#[derive(Clone)]
pub struct SchemeRegistrar {
    registry: SchemeRegistry,
}

impl SchemeRegistrar {
    /// A registrar filling `registry`.
    pub fn new(registry: SchemeRegistry) -> Self {
        Self { registry }
    }
}

impl Registrar for SchemeRegistrar {
    type Variant = MinSig;
    type PublicKey = PublicKey;

    async fn register(&self, epoch: Epoch, info: SchemeInfo<MinSig, PublicKey>) {
        match scheme_from_info(info) {
            Some(scheme) => self.registry.insert(epoch, scheme),
            // The actor derived material that does not fit its own participant set:
            // a bug, not an input error. Without a scheme the orchestrator stops.
            None => error!(
                epoch = epoch.get(),
                "derived scheme does not match its committee"
            ),
        }
    }
}

/// Future committees from the ledger: the validators elected by stake (see
/// `agora_ledger::committee`), two epochs ahead.
///
/// Epoch `e`'s players are fixed in the final block of epoch `e - 2`, so they
/// are the committee the ledger elected at the first block of epoch `e - 2`:
/// finalized on every node long before that final block is built. An
/// election with no valid member keeps the genesis committee.
#[derive(Clone)]
pub struct LedgerCommittee {
    ledger: LedgerView,
    blocks_per_epoch: NonZeroU64,
    genesis: Set<PublicKey>,
}

impl LedgerCommittee {
    /// Committees read from `ledger`'s finalized elections; `genesis` until one exists.
    pub fn new(ledger: LedgerView, blocks_per_epoch: NonZeroU64, genesis: Set<PublicKey>) -> Self {
        Self {
            ledger,
            blocks_per_epoch,
            genesis,
        }
    }

    /// The consensus keys of `members` that are valid ed25519 keys.
    fn keys(members: &[CommitteeMember]) -> Set<PublicKey> {
        Set::from_iter_dedup(members.iter().filter_map(|member| {
            let key = PublicKey::decode_cfg(bytes::Bytes::copy_from_slice(&member.endpoint.consensus_key.0), &()).ok();
            if key.is_none() {
                warn!(validator = %member.validator, "committee member's consensus key is not an ed25519 key; skipped");
            }
            key
        }))
    }
}

impl ParticipantsProvider for LedgerCommittee {
    type PublicKey = PublicKey;
    type Directory = Unit;

    async fn participants(&mut self, epoch: Epoch) -> Set<PublicKey> {
        let Some(source) = epoch.get().checked_sub(2) else {
            return self.genesis.clone();
        };
        let at = source.saturating_mul(self.blocks_per_epoch.get());
        self.ledger.finalized_at_least(at).await;
        let members = match self.ledger.committee_at(at) {
            Some(members) => members,
            None => {
                // Only after a restart far past the election: the newest one is the best guess.
                warn!(
                    epoch = epoch.get(),
                    "election for this epoch not remembered"
                );
                self.ledger.finalized().committee.members.clone()
            }
        };
        let keys = Self::keys(&members);
        if keys.is_empty() {
            self.genesis.clone()
        } else {
            keys
        }
    }

    async fn directory(&mut self, _epoch: Epoch, _peers: Set<PublicKey>) -> Unit {
        // Addresses come from the ledger's announced endpoints, not the block.
        Unit
    }
}

const KEY_SHARE: u8 = 0;
const KEY_SEED: u8 = 1;
const KEY_DEALING: u8 = 2;
/// Tag, epoch, then the dealer's key (zero for shares and seeds).
type SecretKey = FixedBytes<41>;

fn secret_key(tag: u8, epoch: Epoch, dealer: &[u8]) -> SecretKey {
    let mut key = [0u8; 41];
    key[0] = tag;
    key[1..9].copy_from_slice(&epoch.get().to_be_bytes());
    let n = dealer.len().min(32);
    key[9..9 + n].copy_from_slice(&dealer[..n]);
    FixedBytes::new(key)
}

/// Why the secret store could not open.
#[derive(Debug, thiserror::Error)]
#[error("secret store: {0}")]
pub struct SecretStoreError(String);

/// Durable private resharing material (shares, dealer seeds, received
/// dealings) in a commonware metadata partition of the node's storage.
///
/// A dealer's seed for an epoch is derived from its private identity key
/// when none is stored, so a validator whose storage was lost deals exactly
/// what it dealt before instead of equivocating (a fresh random seed would
/// make its second dealing conflict with the acknowledged first one).
pub struct DurableSecretStore<E: Clock + Metrics + Storage> {
    metadata: Option<Metadata<E, SecretKey, Vec<u8>>>,
    dealer_key: [u8; 32],
}

/// Domain of the dealer seeds of the resharing ceremonies.
pub const DEALER_SEED_DOMAIN: &str = "agora 2026 dealer seed v1";
/// Domain of the dealer seeds of the genesis DKG: a validator deals in the
/// genesis DKG's epoch 0 and again in the first reshare (also epoch 0), and
/// the two dealings must not share their randomness.
pub const GENESIS_DKG_SEED_DOMAIN: &str = "agora 2026 genesis dkg dealer seed v1";

impl<E: Clock + Metrics + Storage> DurableSecretStore<E> {
    /// Open (or create) the store in `partition`; `identity_secret` (the
    /// validator's private identity key bytes) keys the derived dealer seeds.
    pub async fn open(
        context: E,
        partition: String,
        identity_secret: &[u8],
    ) -> Result<Self, SecretStoreError> {
        Self::open_in_domain(context, partition, identity_secret, DEALER_SEED_DOMAIN).await
    }

    /// [`Self::open`] deriving dealer seeds in `domain` (one domain per ceremony kind).
    pub async fn open_in_domain(
        context: E,
        partition: String,
        identity_secret: &[u8],
        domain: &str,
    ) -> Result<Self, SecretStoreError> {
        let metadata = Metadata::init(
            context,
            metadata::Config {
                partition,
                codec_config: ((..=1 << 20).into(), ()),
            },
        )
        .await
        .map_err(|e| SecretStoreError(e.to_string()))?;
        let mut hasher = blake3::Hasher::new_derive_key(domain);
        hasher.update(identity_secret);
        Ok(Self {
            metadata: Some(metadata),
            dealer_key: *hasher.finalize().as_bytes(),
        })
    }

    /// The dealer seed of `epoch` derived from the identity key.
    fn derived_seed(&self, epoch: Epoch) -> Option<Summary> {
        let mut hasher = blake3::Hasher::new_keyed(&self.dealer_key);
        hasher.update(&epoch.get().to_be_bytes());
        Summary::decode_cfg(
            bytes::Bytes::copy_from_slice(hasher.finalize().as_bytes()),
            &(),
        )
        .ok()
    }

    /// Store `value` under `key` and wait until it is durable.
    async fn put(&mut self, key: SecretKey, value: Vec<u8>) {
        let Some(metadata) = self.metadata.take() else {
            return;
        };
        match metadata.put_sync(key, value).await {
            Ok(metadata) => self.metadata = Some(metadata),
            // Losing an acknowledged secret could make this dealer equivocate
            // after a restart; stop using the store instead of pretending.
            Err(e) => panic!("secret store write failed: {e}"),
        }
    }

    fn get<T: Decode<Cfg = ()>>(&self, key: &SecretKey) -> Option<T> {
        let bytes = self.metadata.as_ref()?.get(key)?;
        T::decode_cfg(bytes::Bytes::copy_from_slice(bytes), &()).ok()
    }
}

impl<E: Clock + Metrics + Storage> SecretStore for DurableSecretStore<E> {
    async fn put_share(&mut self, epoch: Epoch, share: Share) {
        self.put(secret_key(KEY_SHARE, epoch, &[]), share.encode().to_vec())
            .await;
    }

    async fn get_share(&mut self, epoch: Epoch) -> Option<Share> {
        self.get(&secret_key(KEY_SHARE, epoch, &[]))
    }

    async fn put_seed(&mut self, epoch: Epoch, seed: Summary) {
        self.put(secret_key(KEY_SEED, epoch, &[]), seed.encode().to_vec())
            .await;
    }

    async fn get_seed(&mut self, epoch: Epoch) -> Option<Summary> {
        self.get(&secret_key(KEY_SEED, epoch, &[]))
            .or_else(|| self.derived_seed(epoch))
    }

    async fn put_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: P,
        private: DealerPrivMsg,
    ) {
        let key = secret_key(KEY_DEALING, epoch, dealer.as_ref());
        self.put(key, private.encode().to_vec()).await;
    }

    async fn get_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: &P,
    ) -> Option<DealerPrivMsg> {
        self.get(&secret_key(KEY_DEALING, epoch, dealer.as_ref()))
    }

    async fn prune(&mut self, min: Epoch) {
        let Some(mut metadata) = self.metadata.take() else {
            return;
        };
        metadata.retain(|key, _| {
            let epoch = u64::from_be_bytes(key.as_ref()[1..9].try_into().unwrap_or([0; 8]));
            epoch >= min.get()
        });
        match metadata.sync().await {
            Ok(metadata) => self.metadata = Some(metadata),
            Err(e) => panic!("secret store prune failed: {e}"),
        }
    }
}

/// A [`SecretStore`] shared between the actor that owns it and its reader
/// (the genesis DKG hands its store to commonware's engine, then reads the
/// share the ceremony stored there).
pub struct SharedSecretStore<S> {
    inner: Arc<futures::lock::Mutex<S>>,
}

impl<S> Clone for SharedSecretStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: SecretStore> SharedSecretStore<S> {
    /// Share `store`.
    pub fn new(store: S) -> Self {
        Self {
            inner: Arc::new(futures::lock::Mutex::new(store)),
        }
    }
}

impl<S: SecretStore> SecretStore for SharedSecretStore<S> {
    async fn put_share(&mut self, epoch: Epoch, share: Share) {
        self.inner.lock().await.put_share(epoch, share).await
    }

    async fn get_share(&mut self, epoch: Epoch) -> Option<Share> {
        self.inner.lock().await.get_share(epoch).await
    }

    async fn put_seed(&mut self, epoch: Epoch, seed: Summary) {
        self.inner.lock().await.put_seed(epoch, seed).await
    }

    async fn get_seed(&mut self, epoch: Epoch) -> Option<Summary> {
        self.inner.lock().await.get_seed(epoch).await
    }

    async fn put_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: P,
        private: DealerPrivMsg,
    ) {
        self.inner
            .lock()
            .await
            .put_dealing(epoch, dealer, private)
            .await
    }

    async fn get_dealing<P: PublicKeyTrait>(
        &mut self,
        epoch: Epoch,
        dealer: &P,
    ) -> Option<DealerPrivMsg> {
        self.inner.lock().await.get_dealing(epoch, dealer).await
    }

    async fn prune(&mut self, min: Epoch) {
        self.inner.lock().await.prune(min).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{deterministic, Runner as _, Supervisor as _};

    #[test]
    fn dealer_seeds_survive_a_lost_store_and_differ_by_epoch_and_key() {
        deterministic::Runner::default().start(|context| async move {
            let open = |partition: &str, key: &'static [u8]| {
                DurableSecretStore::open(context.child("store"), partition.to_string(), key)
            };
            let mut first = open("a", b"key one").await.unwrap();
            let e1 = first.get_seed(Epoch::new(1)).await.unwrap();
            // A lost store (another partition) with the same key derives the same seed.
            let mut wiped = open("b", b"key one").await.unwrap();
            assert_eq!(wiped.get_seed(Epoch::new(1)).await, Some(e1));
            assert_ne!(wiped.get_seed(Epoch::new(2)).await, Some(e1));
            let mut other = open("c", b"key two").await.unwrap();
            assert_ne!(other.get_seed(Epoch::new(1)).await, Some(e1));
            // The genesis DKG derives its seeds in another domain.
            let genesis = DurableSecretStore::open_in_domain(
                context.child("store"),
                "d".to_string(),
                b"key one",
                GENESIS_DKG_SEED_DOMAIN,
            )
            .await
            .unwrap();
            assert_ne!(genesis.derived_seed(Epoch::new(1)), Some(e1));
            // A stored seed wins, and survives reopening.
            let stored = other.get_seed(Epoch::new(7)).await.unwrap();
            first.put_seed(Epoch::new(1), stored).await;
            drop(first);
            let mut reopened = open("a", b"key one").await.unwrap();
            assert_eq!(reopened.get_seed(Epoch::new(1)).await, Some(stored));
            // Shares are only what was stored.
            assert!(reopened.get_share(Epoch::new(1)).await.is_none());
        });
    }
}
