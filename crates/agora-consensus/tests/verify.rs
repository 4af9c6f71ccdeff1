//! A malicious proposer's blocks are rejected by `verify`; honest ones pass.

mod common;

use std::time::Duration;

use agora_consensus::seeds::{
    check_parent_seed, seed_randomness, Seed, SeedBook, SeedError, SeedVerifier,
};
use agora_consensus::{
    application::proposer_account,
    block::{to_digest, ConsensusBlock},
    keys::devnet_identity,
    verify_block, AgoraApp, BlockLimits, InMemoryTxSource, LedgerView, TxSource, VerifyError,
};
use agora_ledger::{build_block, BlockCandidate, BlockError, State};
use agora_types::{block::tx_root, AccountId, Block, Hash32, Transaction, TxKind};
use commonware_consensus::simplex::scheme::Namespace;
use commonware_consensus::{
    marshal::ancestry, simplex::types::Context, types::Epoch, types::Round, types::View,
    Application,
};
use commonware_cryptography::bls12381::primitives::{ops, variant::MinSig};
use commonware_cryptography::{Digested, Signer as _};
use commonware_runtime::{deterministic, Runner, Supervisor};
use rand010::{rngs::StdRng, SeedableRng};

use common::{accounts_and_genesis, transfers, CHAIN_ID};

fn honest(state: &State, leader: AccountId, txs: Vec<agora_types::SignedTransaction>) -> Block {
    build_block(
        state,
        BlockCandidate {
            proposer: leader,
            timestamp_ms: 1_000,
            txs,
            randomness: agora_types::Hash32::ZERO,
        },
    )
    .block
}

#[test]
fn verify_block_accepts_honest_and_rejects_tampering() {
    let (keys, genesis) = accounts_and_genesis(3);
    let state = genesis.state().unwrap();
    let leader = AccountId([9; 32]);
    let limits = BlockLimits::default();
    let txs = transfers(&keys, 2);
    let good = honest(&state, leader, txs.clone());
    assert_eq!(good.txs.len(), 6);
    let next = verify_block(&state, &good, &leader, &limits, |_| false).expect("honest block");
    assert_eq!(next.root(), good.header.state_root);

    // Wrong state root.
    let mut bad = good.clone();
    bad.header.state_root = Hash32::digest(b"lie");
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(BlockError::StateRootMismatch { .. }))
    ));

    // An invalid transaction (overspend), with a consistent tx root.
    let mut bad = good.clone();
    let overspend = Transaction {
        chain_id: CHAIN_ID.into(),
        from: keys[0].account(),
        nonce: 2,
        kind: TxKind::Transfer {
            to: keys[1].account(),
            amount: u64::MAX / 2,
        },
    }
    .sign(&keys[0]);
    bad.txs.push(overspend);
    bad.header.tx_root = tx_root(&bad.txs);
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(BlockError::InvalidTx { index: 6, .. }))
    ));

    // A forged signature.
    let mut bad = good.clone();
    bad.txs[0].signature = keys[1].sign(b"something else");
    bad.header.tx_root = tx_root(&bad.txs);
    assert!(verify_block(&state, &bad, &leader, &limits, |_| false).is_err());

    // Skipping checks for transactions verified earlier (a mempool's ids, which
    // cover the signature) gives the same state; a forgery is not among them.
    let admitted: std::collections::HashSet<Hash32> = txs.iter().map(|t| t.id()).collect();
    let known = |t: &agora_types::SignedTransaction| admitted.contains(&t.id());
    let skipped = verify_block(&state, &good, &leader, &limits, known).expect("honest block");
    assert_eq!(skipped.root(), next.root());
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, known),
        Err(VerifyError::Ledger(BlockError::InvalidTx { index: 0, .. }))
    ));

    // Wrong chain id, height, parent, time going backwards.
    let mut bad = good.clone();
    bad.header.chain_id = "other".into();
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(BlockError::WrongChain { .. }))
    ));
    let mut bad = good.clone();
    bad.header.height = 2;
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(BlockError::WrongHeight { .. }))
    ));
    let mut bad = good.clone();
    bad.header.parent = Hash32::digest(b"elsewhere");
    assert!(matches!(
        verify_block(&state, &bad, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(BlockError::WrongParent { .. }))
    ));
    let mut later = state.clone();
    later.last_timestamp_ms = 5_000;
    assert!(matches!(
        verify_block(&later, &good, &leader, &limits, |_| false),
        Err(VerifyError::Ledger(_))
    ));

    // Someone else's block, too many txs, too large.
    assert!(matches!(
        verify_block(&state, &good, &AccountId([1; 32]), &limits, |_| false),
        Err(VerifyError::WrongProposer { .. })
    ));
    let tight = BlockLimits {
        max_txs: 5,
        ..limits
    };
    assert!(matches!(
        verify_block(&state, &good, &leader, &tight, |_| false),
        Err(VerifyError::TooManyTxs(6))
    ));
    let tiny = BlockLimits {
        max_block_bytes: 100,
        ..limits
    };
    assert!(matches!(
        verify_block(&state, &good, &leader, &tiny, |_| false),
        Err(VerifyError::TooLarge(_))
    ));
}

fn context(
    leader: &agora_consensus::keys::PublicKey,
    parent: Hash32,
) -> Context<agora_consensus::block::Digest, agora_consensus::keys::PublicKey> {
    Context {
        round: Round::new(Epoch::zero(), View::new(1)),
        leader: leader.clone(),
        parent: (View::zero(), to_digest(parent)),
    }
}

fn genesis_anchor(genesis: &agora_ledger::Genesis) -> Digested<ConsensusBlock> {
    digested(ConsensusBlock::Genesis {
        hash: genesis.hash(),
        info: Box::new(agora_consensus::devnet_keys(1, 1).unwrap().genesis_epoch()),
    })
}

fn no_payload() -> agora_consensus::application::ProposalInput {
    agora_consensus::application::ProposalInput {
        upstream: (),
        payload: None,
    }
}

fn digested(block: ConsensusBlock) -> Digested<ConsensusBlock> {
    let d = commonware_cryptography::Digestible::digest(&block);
    Digested::precomputed(block, d)
}

/// Through the marshal `Application` interface: propose, verify our own
/// proposal, reject a tampered one and one from the far future (abstains).
#[test]
fn application_proposes_and_verifies() {
    deterministic::Runner::default().start(|runtime| async move {
        let (keys, genesis) = accounts_and_genesis(3);
        let state = genesis.state().unwrap();
        let pool = InMemoryTxSource::new();
        for tx in transfers(&keys, 1) {
            pool.submit(tx);
        }
        let leader_key = devnet_identity(1, 0).public_key();
        let ledger = LedgerView::new(state.clone());
        let mut app = AgoraApp::new(ledger.clone(), pool.clone(), BlockLimits::default());
        let genesis_block = genesis_anchor(&genesis);

        let proposed = Application::<deterministic::Context>::propose(
            &mut app,
            (runtime.child("app"), context(&leader_key, genesis.hash())),
            ancestry::from_iter([genesis_block.clone()]),
            no_payload(),
        )
        .await
        .expect("proposal");
        let block = proposed.inner().agora_block().unwrap().clone();
        assert_eq!(block.txs.len(), 3);
        assert_eq!(block.header.proposer, proposer_account(&leader_key));
        assert_eq!(ledger.pending_len(), 1);

        // A fresh verifier (empty cache) accepts it.
        let verifier_ledger = LedgerView::new(state.clone());
        let mut verifier = AgoraApp::new(
            verifier_ledger.clone(),
            InMemoryTxSource::new(),
            BlockLimits::default(),
        );
        let ok = Application::<deterministic::Context>::verify(
            &mut verifier,
            (runtime.child("app"), context(&leader_key, genesis.hash())),
            ancestry::from_iter([proposed.clone(), genesis_block.clone()]),
        )
        .await;
        assert!(ok);
        assert!(verifier_ledger.state_after(&block.header.id()).is_some());

        // Tampered state root: rejected.
        let mut bad = block.clone();
        bad.header.state_root = Hash32::digest(b"x");
        let ok = Application::<deterministic::Context>::verify(
            &mut verifier,
            (runtime.child("app"), context(&leader_key, genesis.hash())),
            ancestry::from_iter([
                digested(ConsensusBlock::agora(
                    bad,
                    context(&leader_key, genesis.hash()),
                    None,
                    None,
                )),
                genesis_block.clone(),
            ]),
        )
        .await;
        assert!(!ok);

        // The same block presented in another round: rejected.
        let mut later = context(&leader_key, genesis.hash());
        later.round = Round::new(Epoch::zero(), View::new(2));
        let ok = Application::<deterministic::Context>::verify(
            &mut verifier,
            (runtime.child("app"), later),
            ancestry::from_iter([proposed.clone(), genesis_block.clone()]),
        )
        .await;
        assert!(!ok);

        // Proposed by someone other than the leader: rejected.
        let other = devnet_identity(1, 1).public_key();
        let ok = Application::<deterministic::Context>::verify(
            &mut verifier,
            (runtime.child("app"), context(&other, genesis.hash())),
            ancestry::from_iter([proposed.clone(), genesis_block.clone()]),
        )
        .await;
        assert!(!ok);

        // Far-future timestamp: the verifier abstains (never resolves) rather than voting.
        let future = build_block(
            &state,
            BlockCandidate {
                proposer: proposer_account(&leader_key),
                timestamp_ms: 10_000_000,
                txs: vec![],
                randomness: agora_types::Hash32::ZERO,
            },
        )
        .block;
        let pending = Application::<deterministic::Context>::verify(
            &mut verifier,
            (runtime.child("app"), context(&leader_key, genesis.hash())),
            ancestry::from_iter([
                digested(ConsensusBlock::agora(
                    future,
                    context(&leader_key, genesis.hash()),
                    None,
                    None,
                )),
                genesis_block.clone(),
            ]),
        );
        let timeout = commonware_runtime::Clock::sleep(&runtime, Duration::from_secs(60));
        futures::pin_mut!(pending);
        futures::pin_mut!(timeout);
        assert!(matches!(
            futures::future::select(pending, timeout).await,
            futures::future::Either::Right(_)
        ));

        // Finalizing the block drops pending states and mempool entries.
        pool.on_finalized(&block, &ledger.state_after(&block.header.id()).unwrap());
        assert!(pool.is_empty());
        ledger.finalize(ledger.state_after(&block.header.id()).unwrap());
        assert_eq!(ledger.pending_len(), 0);
    });
}

/// A group key for the seed tests, and the seed it signs for `round`.
fn group_seed(
    private: &commonware_cryptography::bls12381::primitives::group::Private,
    round: Round,
) -> Seed {
    let signature = ops::sign_message::<MinSig>(
        private,
        &Namespace::new(agora_consensus::keys::NAMESPACE).seed,
        &commonware_codec::Encode::encode(&round),
    );
    Seed::new(round, signature)
}

/// The draw randomness is the parent round's threshold seed: a leader carries
/// it (and cannot propose without it), and a verifier refuses a block with no
/// seed, another round's seed, a seed the group did not sign, or a header
/// randomness of the proposer's choosing.
#[test]
fn blocks_carry_the_parent_rounds_seed_and_nothing_else() {
    deterministic::Runner::default().start(|runtime| async move {
        let (keys, genesis) = accounts_and_genesis(3);
        let state = genesis.state().unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let (group, identity) = ops::keypair::<_, MinSig>(&mut rng);
        let (forger, _) = ops::keypair::<_, MinSig>(&mut rng);
        let leader_key = devnet_identity(1, 0).public_key();
        let book = SeedBook::default();
        let app_with_seeds = |ledger: LedgerView, pool: InMemoryTxSource| {
            AgoraApp::new(ledger, pool, BlockLimits::default())
                .with_seeds(book.clone(), SeedVerifier::new(identity))
        };
        let pool = InMemoryTxSource::new();
        let ledger = LedgerView::new(state.clone());
        let mut app = app_with_seeds(ledger.clone(), pool.clone());
        let genesis_block = genesis_anchor(&genesis);
        let round_1 = context(&leader_key, genesis.hash());

        // On genesis: no seed, zero randomness.
        let first = Application::<deterministic::Context>::propose(
            &mut app,
            (runtime.child("app"), round_1.clone()),
            ancestry::from_iter([genesis_block.clone()]),
            no_payload(),
        )
        .await
        .expect("proposal on genesis");
        assert_eq!(first.inner().seed(), None);
        assert_eq!(
            first.inner().agora_block().unwrap().header.randomness,
            Hash32::ZERO
        );

        // On block 1 (round 0/1): no proposal until that round's seed is known.
        let round_2 = Context {
            round: Round::new(Epoch::zero(), View::new(2)),
            leader: leader_key.clone(),
            parent: (View::new(1), to_digest(first.inner().id())),
        };
        for tx in transfers(&keys, 1) {
            pool.submit(tx);
        }
        let without_seed = Application::<deterministic::Context>::propose(
            &mut app,
            (runtime.child("app"), round_2.clone()),
            ancestry::from_iter([first.clone(), genesis_block.clone()]),
            no_payload(),
        )
        .await;
        assert!(without_seed.is_none(), "a leader without the seed abstains");
        let seed_1 = group_seed(&group, round_1.round);
        book.insert(seed_1.clone());
        let second = Application::<deterministic::Context>::propose(
            &mut app,
            (runtime.child("app"), round_2.clone()),
            ancestry::from_iter([first.clone(), genesis_block.clone()]),
            no_payload(),
        )
        .await
        .expect("proposal with the parent's seed");
        assert_eq!(second.inner().seed(), Some(&seed_1));
        let header = &second.inner().agora_block().unwrap().header;
        assert_eq!(header.randomness, seed_randomness(Some(&seed_1)));
        assert_ne!(header.randomness, Hash32::ZERO);

        // A fresh verifier accepts it (and learns the seed).
        let verifier_book = SeedBook::default();
        let mut verifier = AgoraApp::new(
            LedgerView::new(state.clone()),
            InMemoryTxSource::new(),
            BlockLimits::default(),
        )
        .with_seeds(verifier_book.clone(), SeedVerifier::new(identity));
        let verify = |verifier: &mut AgoraApp<InMemoryTxSource>, block: ConsensusBlock| {
            let mut verifier = verifier.clone();
            let runtime = runtime.child("verify");
            let ancestry = [digested(block), first.clone(), genesis_block.clone()];
            let round = round_2.clone();
            async move {
                Application::<deterministic::Context>::verify(
                    &mut verifier,
                    (runtime, round),
                    ancestry::from_iter(ancestry),
                )
                .await
            }
        };
        assert!(verify(&mut verifier, second.inner().clone()).await);
        assert_eq!(verifier_book.get(round_1.round), Some(seed_1.clone()));

        // The same transactions on block 1 with a seed (and matching randomness) of the
        // proposer's choosing: none, another round's, one the group did not sign.
        let parent_state = ledger.state_after(&first.inner().id()).unwrap();
        let forged_seeds = [
            None,
            Some(group_seed(&group, Round::new(Epoch::zero(), View::new(0)))),
            Some(group_seed(&forger, round_1.round)),
        ];
        for seed in forged_seeds {
            let block = build_block(
                &parent_state,
                BlockCandidate {
                    proposer: proposer_account(&leader_key),
                    timestamp_ms: header.timestamp_ms,
                    txs: second.inner().agora_block().unwrap().txs.clone(),
                    randomness: seed_randomness(seed.as_ref()),
                },
            )
            .block;
            let forged = ConsensusBlock::agora(block, round_2.clone(), None, seed.clone());
            assert!(
                !verify(&mut verifier, forged).await,
                "a block carrying {:?} is refused",
                seed.map(|s| s.round)
            );
        }
        // The real seed beside a randomness the proposer picked (a grinding attempt).
        let block = build_block(
            &parent_state,
            BlockCandidate {
                proposer: proposer_account(&leader_key),
                timestamp_ms: header.timestamp_ms,
                txs: vec![],
                randomness: Hash32::digest(b"ground"),
            },
        )
        .block;
        let mut consensus_block = ConsensusBlock::agora(block, round_2.clone(), None, None);
        if let ConsensusBlock::Agora { seed, .. } = &mut consensus_block {
            *seed = Some(seed_1.clone());
        }
        assert!(matches!(
            check_parent_seed(
                first.inner(),
                &consensus_block,
                &SeedVerifier::new(identity)
            ),
            Err(SeedError::RandomnessMismatch)
        ));
        assert!(!verify(&mut verifier, consensus_block).await);
    });
}
