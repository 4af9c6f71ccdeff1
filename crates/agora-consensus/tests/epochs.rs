//! Deterministic simulations across consensus epochs: the threshold key is
//! reshared at every epoch end, finality keeps going across the handovers,
//! certificates of every epoch verify against the genesis group key, and a
//! validator that slept through epoch changes catches up and signs again.
//! `AGORA_SIM_SEEDS=N` runs the rejoin scenario over N seeds.

mod common;

use std::time::Duration;

use agora_consensus::{application::proposer_account, FinalityVerifier};
use agora_types::{possession_message, Keypair, Transaction, TxKind};
use commonware_codec::Encode as _;
use commonware_runtime::{Runner, Supervisor};

use common::{
    accounts_and_genesis, run_seeds, seeds, transfers, Cluster, Role, CHAIN_ID, DEFAULT_SIM_EPOCH,
    FUNDING,
};

const ACCOUNTS: usize = 4;
const LIMIT: Duration = Duration::from_secs(1_800);

/// Heights of the final blocks of epochs `0..epochs`.
fn final_heights(epochs: u64) -> Vec<u64> {
    let per = DEFAULT_SIM_EPOCH.get();
    (1..=epochs).map(|e| e * per - 1).collect()
}

#[test]
fn keys_reshare_every_epoch_and_certificates_still_verify() {
    common::runner(11).start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        cluster.submit_all(&transfers(&keys, 8));
        let epochs = 3;
        let target = epochs * DEFAULT_SIM_EPOCH.get() + 2;
        cluster.wait_height(&[0, 1, 2, 3], target, LIMIT).await;
        cluster.assert_consistent(supply);

        let mut members: Vec<_> = (0..4).map(|i| proposer_account(&cluster.pk(i))).collect();
        members.sort();
        let expected = final_heights(epochs);
        let reference = cluster.logs[0].lock().unwrap().epochs.clone();
        let announced: Vec<u64> = reference.keys().copied().collect();
        assert_eq!(announced, expected, "one handover per epoch end");
        for (k, (height, change)) in reference.iter().enumerate() {
            assert_eq!(change.epoch, k as u64 + 1, "handover at {height}");
            assert!(change.reshared, "resharing failed at {height}");
            let mut signers = change.signers.clone();
            signers.sort();
            assert_eq!(signers, members, "signers after {height}");
        }
        for i in 1..4 {
            assert_eq!(
                cluster.logs[i].lock().unwrap().epochs,
                reference,
                "node {i}"
            );
        }

        // A block finalized in epoch 3 (shares reshared three times) verifies
        // against the group key dealt at genesis, and yields the same randomness.
        let identity = agora_consensus::devnet_identity(7, 4).expect("identity");
        let verifier = FinalityVerifier::new(&identity).expect("verifier");
        let log = cluster.logs[0].lock().unwrap();
        let height = 3 * DEFAULT_SIM_EPOCH.get() + 1;
        let (id, _, randomness) = log.blocks[&height];
        let certificate = log.certificates.get(&height).expect("certificate");
        let derived = verifier
            .verify(certificate, id)
            .expect("certificate verifies");
        assert_eq!(Some(derived), randomness);
        assert!(verifier
            .verify(certificate, log.blocks[&(height - 1)].0)
            .is_err());
    });
}

#[test]
fn validator_offline_across_epoch_changes_rejoins() {
    run_seeds(
        "validator_offline_across_epoch_changes_rejoins",
        &seeds(1),
        offline_across_epoch_changes,
    );
}

/// One seed: validator 3 sleeps through two handovers, then rejoins.
fn offline_across_epoch_changes(seed: u64) {
    common::runner(seed).start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        cluster.submit_all(&transfers(&keys, 4));
        cluster.wait_height(&[0, 1, 2, 3], 5, LIMIT).await;

        // Validator 3 sleeps through two handovers.
        cluster.crash(3).await;
        let asleep = 2 * DEFAULT_SIM_EPOCH.get() + 5;
        cluster.wait_height(&[0, 1, 2], asleep, LIMIT).await;
        cluster.spawn(3);

        // It catches up, and the four go on through two more handovers (it
        // holds a share again once it was online for a whole dealing window).
        let target = 4 * DEFAULT_SIM_EPOCH.get() + 8;
        cluster.wait_height(&[0, 1, 2, 3], target, LIMIT).await;
        cluster.assert_consistent(supply);
        let reference = cluster.logs[0].lock().unwrap().epochs.clone();
        assert_eq!(
            reference.keys().copied().collect::<Vec<_>>(),
            final_heights(4)
        );
        assert!(reference
            .values()
            .all(|c| c.reshared && c.signers.len() == 4));
        assert_eq!(cluster.logs[3].lock().unwrap().epochs, reference);

        // Validator 3 leads blocks again: one after the last handover names it.
        let me = proposer_account(&cluster.pk(3));
        let log = cluster.logs[3].lock().unwrap();
        let last = log.last.as_ref().expect("state").height;
        drop(log);
        let proposed_late = (final_heights(4)[3] + 1..=last)
            .any(|h| cluster.logs[0].lock().unwrap().proposers.get(&h) == Some(&me));
        assert!(proposed_late, "validator 3 never proposed after rejoining");
    });
}

#[test]
fn a_validator_elected_by_stake_joins_the_committee() {
    common::runner(13).start(|context| async move {
        let (keys, mut genesis) = accounts_and_genesis(5);
        let per = DEFAULT_SIM_EPOCH.get();
        genesis.params.committee.epoch_blocks = per;
        let supply = 5 * u128::from(FUNDING);
        let mut cluster =
            Cluster::start_with_joiners(context.child("cluster"), &[Role::Honest; 4], 1, genesis)
                .await;
        let joiner = 4;

        // Every validator, the joiner included, bonds stake from an account
        // and announces the consensus key its node signs with.
        let mut txs = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let tx = |nonce, kind| {
                Transaction {
                    chain_id: CHAIN_ID.into(),
                    from: key.account(),
                    nonce,
                    kind,
                }
                .sign(key)
            };
            txs.push(tx(
                0,
                TxKind::BondValidator {
                    amount: FUNDING / 2,
                    take_ppm: 0,
                },
            ));
            // The node's identity as an agora key (the same ed25519 secret)
            // signs the proof of possession.
            let secret = cluster.members[i].identity.encode();
            let node = Keypair::from_seed(secret.as_ref().try_into().expect("a 32-byte secret"));
            assert_eq!(
                node.account(),
                proposer_account(&cluster.pk(i)),
                "one key, two libraries"
            );
            txs.push(tx(
                1,
                TxKind::AnnounceValidator {
                    consensus_key: node.account(),
                    p2p_addr: format!("127.0.0.1:{}", 30_000 + i),
                    possession: node.sign(&possession_message(CHAIN_ID, &key.account())),
                },
            ));
        }
        cluster.submit_all(&txs);

        // Elected at the first block of epoch 1, the five are epoch 3's players
        // (the reshare in epoch 3 deals them shares) and sign from epoch 4.
        let all = [0, 1, 2, 3, joiner];
        cluster.wait_height(&all, 4 * per + 10, LIMIT).await;
        cluster.assert_consistent(supply);

        let log = cluster.logs[0].lock().unwrap();
        let state = log.last.as_ref().expect("state");
        assert_eq!(state.committee.members.len(), 5, "ledger elected all five");
        let joiner_account = proposer_account(&cluster.pk(joiner));
        let epochs = &log.epochs;
        for (height, change) in epochs {
            assert!(change.reshared, "resharing failed at {height}");
        }
        let signers_of = |epoch: u64| {
            epochs
                .values()
                .find(|c| c.epoch == epoch)
                .map(|c| c.signers.clone())
                .unwrap_or_else(|| panic!("no handover to epoch {epoch}"))
        };
        assert_eq!(signers_of(3).len(), 4);
        assert!(!signers_of(3).contains(&joiner_account));
        assert_eq!(signers_of(4).len(), 5);
        assert!(signers_of(4).contains(&joiner_account));
        let led = (4 * per..=state.height).any(|h| log.proposers.get(&h) == Some(&joiner_account));
        assert!(led, "the joiner never led a block in epoch 4");
        drop(log);
        assert_eq!(
            cluster.logs[joiner].lock().unwrap().epochs,
            cluster.logs[0].lock().unwrap().epochs
        );
    });
}
