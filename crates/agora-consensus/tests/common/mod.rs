//! Simulation harness: N agora validators on commonware's deterministic runtime
//! and simulated network, with recording finalized-block sinks.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_consensus::block::EpochInfo;
use agora_consensus::{
    engine::{
        CHANNEL_BACKFILL, CHANNEL_BROADCAST, CHANNEL_CERTIFICATE, CHANNEL_DKG, CHANNEL_RESOLVER,
        CHANNEL_VOTE,
    },
    genesis_dkg::{GenesisDkgConfig, GENESIS_DKG_BLOCKS, GENESIS_DKG_CHANNELS},
    keys::{PrivateKey, PublicKey},
    run_genesis_dkg, start_validator, BlockLimits, Channels, DevnetKeys, EpochChange, Finalized,
    FinalizedSink, InMemoryTxSource, LedgerView, Timeouts, ValidatorConfig, ValidatorKeys,
};
use agora_ledger::{Genesis, State};
use agora_testkit::GenesisBuilder;
use agora_types::{Hash32, Keypair, SignedTransaction, Transaction, TxKind};
use commonware_consensus::{
    simplex::{
        elector::RoundRobin,
        mocks::{conflicter, equivocator, relay::Relay},
    },
    types::Epoch,
};
use commonware_cryptography::{bls12381::primitives::group::Share, Sha256, Signer as _};
use commonware_p2p::simulated::{self, Link, Oracle};
use commonware_p2p::utils::mux;
use commonware_runtime::{deterministic, Clock, Handle, Quota, Spawner, Supervisor};
use commonware_utils::ordered::Set;
use commonware_utils::{channel::mpsc, probability, NZUsize, NZU32};

/// Chain id of simulated networks.
pub const CHAIN_ID: &str = "agora-sim";
/// Initial balance of every funded account.
pub const FUNDING: u64 = 1_000_000;

/// Seeds to run the multi-seed tests over: `AGORA_SIM_SEED` (one seed, to replay a
/// failure), else `AGORA_SIM_SEEDS` (count, from 1000), else `default` of them.
pub fn seeds(default: u64) -> Vec<u64> {
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = env("AGORA_SIM_SEED") {
        return vec![seed];
    }
    let n = env("AGORA_SIM_SEEDS").unwrap_or(default);
    (0..n).map(|i| 1000 + i).collect()
}

/// A deterministic runtime seeded with `seed`, stopping a run after two
/// simulated hours (a hung scenario fails instead of spinning).
pub fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(7_200))),
    )
}

/// Run `scenario` once per seed, keep going past failures, then fail listing every
/// failing seed with the command that replays it.
pub fn run_seeds(test: &str, seeds: &[u64], scenario: impl Fn(u64) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for &seed in seeds {
        if let Err(panic) = std::panic::catch_unwind(|| scenario(seed)) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("{test}: seed {seed} FAILED: {why}");
            failed.push(seed);
        }
    }
    eprintln!("{test}: {} seeds, {} failed", seeds.len(), failed.len());
    assert!(
        failed.is_empty(),
        "{test} failed for seeds {failed:?}; replay one with AGORA_SIM_SEED=<seed> cargo test -p agora-consensus --test faults {test}"
    );
}

/// Expected balances after all `transfers(keys, rounds)` over `n` accounts apply.
pub fn expected_balances(n: usize, rounds: u64) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let sent = rounds * (10 + i as u64);
            let prev = (i + n - 1) % n;
            let received = rounds * (10 + prev as u64);
            FUNDING - sent + received
        })
        .collect()
}

/// What a simulated validator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The real agora validator.
    Honest,
    /// Byzantine: answers every notarize/finalize vote with a conflicting one too.
    Conflicter,
    /// Byzantine: as leader, sends one proposal to a victim and another to the rest.
    Equivocator,
}

/// What one validator's sink recorded; shared with the test (it survives crashes,
/// like a durable store would).
#[derive(Default, Debug)]
pub struct NodeLog {
    /// Finalized heights in delivery order (to check order and exactly-once).
    pub order: Vec<u64>,
    /// height -> (block id, state root, randomness).
    pub blocks: BTreeMap<u64, (Hash32, Hash32, Option<[u8; 32]>)>,
    /// Total supply after each height.
    pub supply: BTreeMap<u64, u128>,
    /// Transactions included per height.
    pub txs: BTreeMap<u64, usize>,
    /// Last state delivered.
    pub last: Option<State>,
    /// Proposer of each height.
    pub proposers: BTreeMap<u64, agora_types::AccountId>,
    /// Epoch handovers by the height of the final block announcing them.
    pub epochs: BTreeMap<u64, EpochChange>,
    /// Encoded finalization certificates by height (when delivered with one).
    pub certificates: BTreeMap<u64, Vec<u8>>,
    /// Each header's draw randomness (its parent round's seed's).
    pub header_randomness: BTreeMap<u64, Hash32>,
}

impl NodeLog {
    /// Highest delivered height (0 if none).
    pub fn height(&self) -> u64 {
        self.last.as_ref().map(|s| s.height).unwrap_or(0)
    }
}

/// A sink recording into a shared [`NodeLog`] and pinging the test.
pub struct RecordingSink {
    pub index: usize,
    pub log: Arc<Mutex<NodeLog>>,
    pub notify: mpsc::UnboundedSender<(usize, u64)>,
}

impl FinalizedSink for RecordingSink {
    fn last_applied(&self) -> Option<State> {
        self.log.lock().unwrap().last.clone()
    }

    fn deliver(&mut self, f: Finalized) -> Result<(), String> {
        {
            let mut log = self.log.lock().unwrap();
            log.order.push(f.height);
            log.blocks
                .insert(f.height, (f.block.header.id(), f.state_root, f.randomness));
            // Supply net of emission and burns must equal genesis supply at every height.
            log.supply.insert(
                f.height,
                f.state.total_supply() + f.state.burned - f.state.emitted,
            );
            log.txs.insert(f.height, f.block.txs.len());
            log.proposers.insert(f.height, f.block.header.proposer);
            log.header_randomness
                .insert(f.height, f.block.header.randomness);
            if let Some(change) = f.epoch_change.clone() {
                log.epochs.insert(f.height, change);
            }
            if let Some(certificate) = f.certificate.clone() {
                log.certificates.insert(f.height, certificate);
            }
            log.last = Some((*f.state).clone());
        }
        let _ = self.notify.send((self.index, f.height));
        Ok(())
    }
}

/// Funded test accounts and a genesis giving each [`FUNDING`].
pub fn accounts_and_genesis(count: usize) -> (Vec<Keypair>, Genesis) {
    let keys: Vec<Keypair> = (0..count)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[0] = i as u8;
            seed[1] = 0xA7;
            Keypair::from_seed(seed)
        })
        .collect();
    // No fees: the expected balances below are exact sums of transfers;
    // validators bond half of their funding, below the default minimum.
    let genesis = GenesisBuilder::new(CHAIN_ID)
        .fund_keys(&keys, FUNDING)
        .params(|p| {
            p.tx_fee = 0;
            p.min_validator_bond = 1;
        })
        .build();
    (keys, genesis)
}

/// `rounds` transfers from every account to the next one (nonces 0..rounds).
pub fn transfers(keys: &[Keypair], rounds: u64) -> Vec<SignedTransaction> {
    let mut out = Vec::new();
    for nonce in 0..rounds {
        for (i, k) in keys.iter().enumerate() {
            let to = keys[(i + 1) % keys.len()].account();
            out.push(
                Transaction {
                    chain_id: CHAIN_ID.into(),
                    from: k.account(),
                    nonce,
                    kind: TxKind::Transfer {
                        to,
                        amount: 10 + i as u64,
                    },
                }
                .sign(k),
            );
        }
    }
    out
}

/// A simulated cluster of validators.
pub struct Cluster {
    pub context: deterministic::Context,
    pub oracle: Oracle<PublicKey, deterministic::Context>,
    pub keys: DevnetKeys,
    /// Every validator's keys: the genesis committee's, then the joiners'.
    pub members: Vec<ValidatorKeys>,
    pub genesis: Genesis,
    pub pools: Vec<InMemoryTxSource>,
    pub logs: Vec<Arc<Mutex<NodeLog>>>,
    pub handles: Vec<Option<Handle<()>>>,
    pub notify_tx: mpsc::UnboundedSender<(usize, u64)>,
    pub notify_rx: mpsc::UnboundedReceiver<(usize, u64)>,
    pub limits: BlockLimits,
    /// Blocks per epoch (resharing runs in every epoch).
    pub blocks_per_epoch: NonZeroU64,
    /// Set when the genesis threshold key comes from a DKG among the
    /// validators instead of the devnet dealer.
    pub dkg: Option<GenesisDkgSim>,
}

/// What a genesis validator does during the genesis DKG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkgRole {
    /// Runs the real DKG, then consensus.
    Honest,
    /// Never starts (offline for the whole run).
    Offline,
    /// Sends malformed dealings and garbage on every genesis DKG channel
    /// instead of taking part, and never runs consensus.
    Garbage,
}

/// One validator's view of a genesis DKG outcome (one record per start).
#[derive(Clone)]
pub struct DkgRecord {
    /// Epoch 0 as this validator derived it.
    pub genesis_epoch: EpochInfo,
    /// The share it holds, if any.
    pub share: Option<Share>,
}

/// Genesis DKG state of a simulated cluster.
pub struct GenesisDkgSim {
    /// Every genesis validator's role.
    pub roles: Vec<DkgRole>,
    /// Outcomes each validator reported, per start (survive crashes).
    pub outcomes: Vec<Arc<Mutex<Vec<DkgRecord>>>>,
}

/// Blocks per epoch in simulations: short, so runs cross several epochs and
/// their key reshares.
pub const DEFAULT_SIM_EPOCH: NonZeroU64 = match NonZeroU64::new(20) {
    Some(n) => n,
    None => unreachable!(),
};

/// The default link: 50 ms ± 10 ms, lossless.
pub fn good_link() -> Link {
    Link {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(10),
        success_rate: probability!(1.0),
    }
}

impl Cluster {
    /// Build the network (all pairs linked) and start `n` honest validators.
    pub async fn start(context: deterministic::Context, n: usize, genesis: Genesis) -> Self {
        Self::start_roles(context, &vec![Role::Honest; n], genesis).await
    }

    /// Build the network (all pairs linked) and start one validator per role.
    pub async fn start_roles(
        context: deterministic::Context,
        roles: &[Role],
        genesis: Genesis,
    ) -> Self {
        Self::start_with_joiners(context, roles, 0, genesis).await
    }

    /// [`Self::start_roles`] plus `joiners` honest validators outside the
    /// genesis committee (indices after the genesis ones), following the chain.
    pub async fn start_with_joiners(
        context: deterministic::Context,
        roles: &[Role],
        joiners: usize,
        genesis: Genesis,
    ) -> Self {
        let genesis_n = roles.len();
        let n = genesis_n + joiners;
        let keys = agora_consensus::devnet_keys(7, genesis_n).expect("devnet keys");
        let mut members = keys.validators.clone();
        members.extend(
            (genesis_n..n)
                .map(|i| ValidatorKeys::joiner(agora_consensus::keys::devnet_identity(7, i))),
        );
        let mut cluster = Self::assemble(context, members, keys, genesis, None).await;
        for (i, role) in roles.iter().enumerate() {
            match role {
                Role::Honest => cluster.spawn(i),
                byzantine => cluster.spawn_byzantine(i, *byzantine),
            }
        }
        for i in genesis_n..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// Build the network and start a genesis of `roles.len()` validators,
    /// each with its own identity key (none derived from a shared seed),
    /// whose threshold key comes from a DKG among them.
    pub async fn start_dkg(
        context: deterministic::Context,
        roles: &[DkgRole],
        genesis: Genesis,
    ) -> Self {
        let n = roles.len();
        // Independent keys: the simulation's own fixtures, one per validator.
        let members: Vec<ValidatorKeys> = (0..n)
            .map(|i| ValidatorKeys::joiner(PrivateKey::from_seed(0xD1C6_0000 + i as u64)))
            .collect();
        // Unused in DKG mode: nothing is dealt.
        let keys = agora_consensus::devnet_keys(7, 1).expect("devnet keys");
        let dkg = GenesisDkgSim {
            roles: roles.to_vec(),
            outcomes: (0..n).map(|_| Arc::default()).collect(),
        };
        let mut cluster = Self::assemble(context, members, keys, genesis, Some(dkg)).await;
        for (i, role) in roles.iter().enumerate() {
            match role {
                DkgRole::Honest => cluster.spawn(i),
                DkgRole::Offline => {}
                DkgRole::Garbage => cluster.spawn_garbage(i),
            }
        }
        cluster
    }

    /// The simulated network of `members` (all linked) and a cluster on it
    /// with nothing started yet.
    async fn assemble(
        context: deterministic::Context,
        members: Vec<ValidatorKeys>,
        keys: DevnetKeys,
        genesis: Genesis,
        dkg: Option<GenesisDkgSim>,
    ) -> Self {
        let n = members.len();
        let (network, oracle) = simulated::Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: 1 << 20,
                max_peers_per_set: NZUsize!(n),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(3),
            },
            members.iter().map(|m| m.public_key()),
        )
        .await;
        network.start();
        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let cluster = Cluster {
            context,
            oracle,
            keys,
            members,
            genesis,
            pools: (0..n).map(|_| InMemoryTxSource::new()).collect(),
            logs: (0..n).map(|_| Arc::default()).collect(),
            handles: (0..n).map(|_| None).collect(),
            notify_tx,
            notify_rx,
            limits: BlockLimits {
                max_txs: 8,
                ..BlockLimits::default()
            },
            blocks_per_epoch: DEFAULT_SIM_EPOCH,
            dkg,
        };
        cluster.link_all(good_link()).await;
        cluster
    }

    /// The genesis validators' public identities (what the genesis names).
    pub fn genesis_participants(&self) -> Set<PublicKey> {
        Set::from_iter_dedup(self.members.iter().map(|m| m.public_key()))
    }

    /// Outcomes validator `i` reported from the genesis DKG, one per start.
    pub fn dkg_records(&self, i: usize) -> Vec<DkgRecord> {
        self.dkg.as_ref().expect("DKG cluster").outcomes[i]
            .lock()
            .unwrap()
            .clone()
    }

    /// Start validator `i` as a participant that floods every genesis DKG
    /// channel with malformed messages (a dealing tag with a truncated body,
    /// and random bytes) and does nothing else.
    pub fn spawn_garbage(&mut self, i: usize) {
        use commonware_p2p::{Recipients, Sender as _};
        use rand_core010::Rng as _;
        assert!(self.handles[i].is_none(), "validator {i} already running");
        let control = self.oracle.control(self.pk(i));
        let handle = self
            .context
            .child("garbage")
            .with_attribute("index", i)
            .spawn(move |mut context| async move {
                let mut channels = register_channels(&control, GENESIS_DKG_CHANNELS).await;
                loop {
                    for (sender, _) in channels.iter_mut() {
                        // Epoch 0's subchannel, a dealing tag, then a truncated commitment.
                        let mut bad = vec![0u8, 0u8, 3u8];
                        let mut noise = [0u8; 40];
                        context.fill_bytes(&mut noise);
                        bad.extend_from_slice(&noise);
                        let _ = sender.send(Recipients::All, bad, true);
                        let _ = sender.send(Recipients::All, noise.to_vec(), true);
                    }
                    context.sleep(Duration::from_millis(100)).await;
                }
            });
        self.handles[i] = Some(handle);
    }

    /// Number of validators.
    pub fn n(&self) -> usize {
        self.pools.len()
    }

    /// Public key of validator `i`.
    pub fn pk(&self, i: usize) -> PublicKey {
        self.members[i].public_key()
    }

    /// Link every ordered pair with `link` (replacing existing links).
    pub async fn link_all(&self, link: Link) {
        for a in 0..self.n() {
            for b in 0..self.n() {
                if a != b {
                    self.link(a, b, link.clone()).await;
                }
            }
        }
    }

    /// (Re)link `a -> b`.
    pub async fn link(&self, a: usize, b: usize, link: Link) {
        let _ = self.oracle.remove_link(self.pk(a), self.pk(b)).await;
        self.oracle
            .add_link(self.pk(a), self.pk(b), link)
            .await
            .expect("add link");
    }

    /// Cut `a <-> b` both ways.
    pub async fn cut(&self, a: usize, b: usize) {
        let _ = self.oracle.remove_link(self.pk(a), self.pk(b)).await;
        let _ = self.oracle.remove_link(self.pk(b), self.pk(a)).await;
    }

    /// Start (or restart, from the same storage partitions) validator `i`.
    pub fn spawn(&mut self, i: usize) {
        assert!(self.handles[i].is_none(), "validator {i} already running");
        let control = self.oracle.control(self.pk(i));
        let manager = self.oracle.manager();
        let config = ValidatorConfig {
            keys: self.members[i].clone(),
            genesis_epoch: self.keys.genesis_epoch(),
            ledger: LedgerView::new(self.genesis.state().expect("genesis state")),
            blocks_per_epoch: self.blocks_per_epoch,
            genesis: self.genesis.clone(),
            partition_prefix: format!("v{i}"),
            txs: self.pools[i].clone(),
            limits: self.limits,
            timeouts: Timeouts::default(),
        };
        let sink = RecordingSink {
            index: i,
            log: self.logs[i].clone(),
            notify: self.notify_tx.clone(),
        };
        // With a genesis DKG, epoch 0 (and the share) come from the ceremony.
        let ceremony = self.dkg.as_ref().map(|dkg| {
            let dkg_config = GenesisDkgConfig {
                identity: self.members[i].identity.clone(),
                participants: self.genesis_participants(),
                partition_prefix: format!("g{i}"),
                blocks: GENESIS_DKG_BLOCKS,
            };
            (dkg_config, dkg.outcomes[i].clone(), self.notify_tx.clone())
        });
        let handle = self
            .context
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let channels = register(&control).await;
                let config = match ceremony {
                    None => config,
                    Some((dkg_config, record, notify)) => {
                        let dkg_channels = register_channels(&control, GENESIS_DKG_CHANNELS).await;
                        let dkg = run_genesis_dkg(
                            context.child("genesis_dkg"),
                            dkg_config,
                            manager.clone(),
                            control.clone(),
                            into_channels(dkg_channels),
                        )
                        .await
                        .expect("genesis DKG");
                        record.lock().unwrap().push(DkgRecord {
                            genesis_epoch: dkg.genesis_epoch.clone(),
                            share: dkg.keys.genesis.as_ref().map(|g| g.share.clone()),
                        });
                        let _ = notify.send((i, 0));
                        ValidatorConfig {
                            keys: dkg.keys,
                            genesis_epoch: dkg.genesis_epoch,
                            ..config
                        }
                    }
                };
                let _handles = start_validator(
                    context,
                    config,
                    sink,
                    manager.clone(),
                    manager,
                    control.clone(),
                    channels,
                )
                .await
                .expect("start validator");
                futures::future::pending::<()>().await;
            });
        self.handles[i] = Some(handle);
    }

    /// Start validator `i` as a Byzantine `role` signing with its real keys.
    pub fn spawn_byzantine(&mut self, i: usize, role: Role) {
        assert!(self.handles[i].is_none(), "validator {i} already running");
        let control = self.oracle.control(self.pk(i));
        let scheme = self.keys.validators[i]
            .genesis
            .as_ref()
            .expect("genesis validator")
            .scheme
            .clone();
        let handle = self
            .context
            .child("byzantine")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let channels = register(&control).await;
                // Honest validators run simplex per epoch on subchannels of the
                // vote and certificate channels; the test doubles speak epoch 0's.
                let vote = epoch_zero(&context, "vote_mux", channels.vote).await;
                let certificate =
                    epoch_zero(&context, "certificate_mux", channels.certificate).await;
                let actor = match role {
                    Role::Conflicter => conflicter::Conflicter::<_, _, Sha256>::new(
                        context.child("conflicter"),
                        conflicter::Config { scheme },
                    )
                    .start(vote),
                    Role::Equivocator => equivocator::Equivocator::<_, _, _, Sha256>::new(
                        context.child("equivocator"),
                        equivocator::Config {
                            scheme,
                            elector: RoundRobin::<Sha256>::default(),
                            epoch: Epoch::zero(),
                            relay: Arc::new(Relay::default()),
                        },
                    )
                    .start(vote, certificate),
                    Role::Honest => unreachable!("honest validators use spawn"),
                };
                let _ = actor.await;
            });
        self.handles[i] = Some(handle);
    }

    /// Crash validator `i`: abort its task tree and wait until it is gone.
    pub async fn crash(&mut self, i: usize) {
        let handle = self.handles[i].take().expect("validator running");
        handle.abort();
        let _ = handle.await;
    }

    /// Submit `txs` to every validator's pool (stands in for gossip).
    pub fn submit_all(&self, txs: &[SignedTransaction]) {
        for pool in &self.pools {
            for tx in txs {
                pool.submit(tx.clone());
            }
        }
    }

    /// Height reached by validator `i`.
    pub fn height(&self, i: usize) -> u64 {
        self.logs[i].lock().unwrap().height()
    }

    /// Wait (on the deterministic clock) until `cond` holds; panics after `limit`.
    pub async fn wait_until(
        &mut self,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&Self) -> bool,
    ) {
        let deadline = self.context.current() + limit;
        while !cond(self) {
            let timed_out = {
                let timeout = self.context.sleep_until(deadline);
                futures::pin_mut!(timeout);
                let recv = self.notify_rx.recv();
                futures::pin_mut!(recv);
                match futures::future::select(recv, timeout).await {
                    futures::future::Either::Left((Some(_), _)) => false,
                    futures::future::Either::Left((None, _)) => panic!("notify channel closed"),
                    futures::future::Either::Right(_) => true,
                }
            };
            if timed_out {
                let heights: Vec<u64> = (0..self.n()).map(|i| self.height(i)).collect();
                panic!("timed out waiting for {what}; heights {heights:?}");
            }
        }
    }

    /// Wait until every validator in `which` has reached `height`.
    pub async fn wait_height(&mut self, which: &[usize], height: u64, limit: Duration) {
        let which = which.to_vec();
        self.wait_until(limit, &format!("{which:?} at height {height}"), |c| {
            which.iter().all(|&i| c.height(i) >= height)
        })
        .await;
    }

    /// Assert all validators agree on every height they all have, heights were
    /// delivered contiguously and once each, and supply is conserved. Returns the
    /// common height.
    pub fn assert_consistent(&self, expected_supply: u128) -> u64 {
        let all: Vec<usize> = (0..self.n()).collect();
        self.assert_consistent_among(&all, expected_supply)
    }

    /// [`Cluster::assert_consistent`] over the validators in `which` only.
    pub fn assert_consistent_among(&self, which: &[usize], expected_supply: u128) -> u64 {
        let logs: Vec<_> = which
            .iter()
            .map(|&i| self.logs[i].lock().unwrap())
            .collect();
        for (i, log) in logs.iter().enumerate() {
            let expected: Vec<u64> = (1..=log.height()).collect();
            assert_eq!(log.order, expected, "validator {} delivery order", which[i]);
            for (h, s) in &log.supply {
                assert_eq!(
                    *s, expected_supply,
                    "validator {} supply at height {h}",
                    which[i]
                );
            }
        }
        let common = logs.iter().map(|l| l.height()).min().unwrap_or(0);
        for h in 1..=common {
            let first = logs[0].blocks[&h];
            for (i, log) in logs.iter().enumerate().skip(1) {
                let b = log.blocks[&h];
                assert_eq!(b.0, first.0, "block id differs at height {h} (v0 vs v{i})");
                assert_eq!(
                    b.1, first.1,
                    "state root differs at height {h} (v0 vs v{i})"
                );
                if let (Some(x), Some(y)) = (b.2, first.2) {
                    assert_eq!(x, y, "randomness differs at height {h} (v0 vs v{i})");
                }
            }
        }
        // Every header draws from its parent round's threshold seed: the
        // randomness of the parent's own finalization certificate, where a
        // validator saw that certificate (none on the block after genesis).
        for (i, log) in logs.iter().enumerate() {
            let mut checked = 0;
            for (&h, &randomness) in &log.header_randomness {
                if h == 1 {
                    assert_eq!(randomness, Hash32::ZERO, "validator {} block 1", which[i]);
                    continue;
                }
                assert_ne!(randomness, Hash32::ZERO, "validator {} block {h}", which[i]);
                if let Some(Some(parent_seed)) = log.blocks.get(&(h - 1)).map(|b| b.2) {
                    assert_eq!(
                        randomness,
                        Hash32(parent_seed),
                        "validator {} block {h} draws from its parent's seed",
                        which[i]
                    );
                    checked += 1;
                }
            }
            if log.height() >= 5 {
                assert!(
                    checked > 0,
                    "validator {} saw no parent certificate",
                    which[i]
                );
            }
        }
        common
    }

    /// Assert no validator blocked a peer (a sign of invalid messages).
    pub async fn assert_no_blocks(&self) {
        let blocked = self.oracle.blocked().await.expect("oracle");
        assert!(blocked.is_empty(), "peers blocked: {blocked:?}");
    }
}

/// Register the five validator channels on `control`.
type SimSender = simulated::Sender<PublicKey, deterministic::Context>;
type SimReceiver = simulated::Receiver<PublicKey>;

/// Epoch 0's subchannel of a simulated channel.
async fn epoch_zero(
    context: &deterministic::Context,
    label: &'static str,
    (sender, receiver): (SimSender, SimReceiver),
) -> (mux::SubSender<SimSender>, mux::SubReceiver<PublicKey>) {
    let (muxer, mut handle) = mux::Muxer::new(context.child(label), sender, receiver);
    muxer.start();
    handle.register(0).await.expect("epoch 0 subchannel")
}

/// Register `ids` on `control`, in order.
async fn register_channels(
    control: &simulated::Control<PublicKey, deterministic::Context>,
    ids: [u64; 6],
) -> Vec<(SimSender, SimReceiver)> {
    let quota = Quota::per_second(NZU32!(10_000));
    let mut reg = Vec::new();
    for ch in ids {
        reg.push(control.register(ch, quota).await.expect("register"));
    }
    reg
}

async fn register(
    control: &simulated::Control<PublicKey, deterministic::Context>,
) -> Channels<SimSender, SimReceiver> {
    let reg = register_channels(
        control,
        [
            CHANNEL_VOTE,
            CHANNEL_CERTIFICATE,
            CHANNEL_RESOLVER,
            CHANNEL_BROADCAST,
            CHANNEL_BACKFILL,
            CHANNEL_DKG,
        ],
    )
    .await;
    into_channels(reg)
}

/// Six registered channels as [`Channels`] (in its field order).
fn into_channels(reg: Vec<(SimSender, SimReceiver)>) -> Channels<SimSender, SimReceiver> {
    let mut reg = reg.into_iter();
    let mut next = || reg.next().expect("six channels");
    Channels {
        vote: next(),
        certificate: next(),
        resolver: next(),
        broadcast: next(),
        backfill: next(),
        dkg: next(),
    }
}
