//! Deterministic simulations across consensus epochs: the threshold key is
//! reshared at every epoch end, finality keeps going across the handovers,
//! certificates of every epoch verify against the genesis group key, and a
//! validator that slept through epoch changes catches up and signs again.

mod common;

use std::time::Duration;

use agora_consensus::{application::proposer_account, FinalityVerifier};
use commonware_runtime::{deterministic, Runner, Supervisor};

use common::{accounts_and_genesis, transfers, Cluster, DEFAULT_SIM_EPOCH, FUNDING};

const ACCOUNTS: usize = 4;
const LIMIT: Duration = Duration::from_secs(1_800);

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(7_200))),
    )
}

/// Heights of the final blocks of epochs `0..epochs`.
fn final_heights(epochs: u64) -> Vec<u64> {
    let per = DEFAULT_SIM_EPOCH.get();
    (1..=epochs).map(|e| e * per - 1).collect()
}

#[test]
fn keys_reshare_every_epoch_and_certificates_still_verify() {
    runner(11).start(|context| async move {
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
    runner(12).start(|context| async move {
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
