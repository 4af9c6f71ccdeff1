//! Deterministic simulations of agora validators: safety and liveness over
//! seeds, crash/restart recovery, and partition healing.

mod common;

use std::time::Duration;

use commonware_runtime::{deterministic, Clock, Runner, Supervisor};

use common::{
    accounts_and_genesis, expected_balances, good_link, seeds, transfers, Cluster, FUNDING,
};

const ACCOUNTS: usize = 6;
const LIMIT: Duration = Duration::from_secs(600);

fn run_safety(seed: u64) -> String {
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        // 20 rounds x 6 accounts = 120 transfers, at most 8 per block: spread over >= 15 blocks.
        let rounds = 20;
        let txs = transfers(&keys, rounds);
        cluster.submit_all(&txs);
        cluster.wait_height(&[0, 1, 2, 3], 20, LIMIT).await;
        cluster
            .wait_until(LIMIT, "all transfers included", |c| {
                (0..4).all(|i| c.pools[i].is_empty())
            })
            .await;
        let all: Vec<usize> = (0..4).collect();
        let top = (0..4).map(|i| cluster.height(i)).max().unwrap();
        cluster.wait_height(&all, top, LIMIT).await;
        let common = cluster.assert_consistent(supply);
        assert!(common >= 20, "only {common} blocks finalized");
        cluster.assert_no_blocks().await;

        // Every transfer applied exactly once: final balances are as computed offline.
        let expected = expected_balances(ACCOUNTS, rounds);
        for i in 0..4 {
            let log = cluster.logs[i].lock().unwrap();
            let state = log.last.as_ref().unwrap();
            for (k, key) in keys.iter().enumerate() {
                let account = state.account(&key.account());
                assert_eq!(account.balance, expected[k], "validator {i} account {k}");
                assert_eq!(account.nonce, rounds, "validator {i} account {k} nonce");
            }
            let included: usize = log.txs.values().sum();
            assert_eq!(included, txs.len(), "validator {i} included tx count");
            assert!(
                log.txs.values().filter(|n| **n > 0).count() >= 15,
                "transactions spread over blocks"
            );
            assert!(
                log.blocks.values().any(|b| b.2.is_some()),
                "validator {i} never saw a finalization certificate"
            );
        }
        context.auditor().state()
    })
}

/// 4 validators finalize >= 20 blocks of transfers over several seeds; all agree.
#[test]
fn four_validators_agree_over_seeds() {
    for seed in seeds(5) {
        run_safety(seed);
    }
}

/// The same seed replays to the exact same execution.
#[test]
fn simulation_is_deterministic() {
    assert_eq!(run_safety(42), run_safety(42));
}

/// One validator crashes; the other three keep finalizing; it restarts from its
/// storage and catches up to the same blocks and state.
#[test]
fn crashed_validator_restarts_and_catches_up() {
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(7)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        cluster.submit_all(&transfers(&keys, 5));
        cluster.wait_height(&[0, 1, 2, 3], 5, LIMIT).await;

        cluster.crash(3).await;
        let at_crash = cluster.height(3);
        cluster.submit_all(&transfers(&keys, 10)[5 * ACCOUNTS..]);
        let target = at_crash + 10;
        cluster.wait_height(&[0, 1, 2], target, LIMIT).await;
        assert_eq!(
            cluster.height(3),
            at_crash,
            "crashed validator made progress"
        );

        cluster.spawn(3);
        let top = (0..3).map(|i| cluster.height(i)).max().unwrap();
        cluster.wait_height(&[3], top, LIMIT).await;
        cluster.wait_height(&[0, 1, 2, 3], top + 3, LIMIT).await;
        let common = cluster.assert_consistent(supply);
        assert!(common >= top + 3);
        cluster.assert_no_blocks().await;
    });
}

/// A validator that lost its consumer state (e.g. the chain store was wiped)
/// replays every finalized block from marshal after restarting.
#[test]
fn restart_with_lost_consumer_state_replays() {
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(11)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        cluster.submit_all(&transfers(&keys, 3));
        cluster.wait_height(&[0, 1, 2, 3], 6, LIMIT).await;
        cluster.crash(2).await;
        *cluster.logs[2].lock().unwrap() = Default::default();
        cluster.spawn(2);
        let top = (0..4)
            .filter(|i| *i != 2)
            .map(|i| cluster.height(i))
            .max()
            .unwrap();
        cluster.wait_height(&[0, 1, 2, 3], top + 2, LIMIT).await;
        cluster.assert_consistent(supply);
    });
}

/// A partition without a quorum halts finalization (safety); healing it, even
/// with slow links, resumes it (liveness).
#[test]
fn partition_heals_and_finalization_resumes() {
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(3)
            .with_timeout(Some(Duration::from_secs(3_600))),
    );
    runner.start(|context| async move {
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start(context.child("cluster"), 4, genesis).await;
        cluster.submit_all(&transfers(&keys, 4));
        cluster.wait_height(&[0, 1, 2, 3], 4, LIMIT).await;

        // Split {0,1} | {2,3}: neither side has 3 of 4.
        for a in [0, 1] {
            for b in [2, 3] {
                cluster.cut(a, b).await;
            }
        }
        // Let in-flight messages drain, then check nothing more finalizes.
        context.sleep(Duration::from_secs(5)).await;
        let frozen: Vec<u64> = (0..4).map(|i| cluster.height(i)).collect();
        context.sleep(Duration::from_secs(30)).await;
        let later: Vec<u64> = (0..4).map(|i| cluster.height(i)).collect();
        assert_eq!(frozen, later, "finalized without a quorum");

        // Heal with slow, jittery links.
        let slow = commonware_p2p::simulated::Link {
            latency: Duration::from_millis(400),
            jitter: Duration::from_millis(150),
            ..good_link()
        };
        cluster.link_all(slow).await;
        let top = later.iter().copied().max().unwrap();
        cluster.wait_height(&[0, 1, 2, 3], top + 5, LIMIT).await;
        // Back to fast links, keeps going.
        cluster.link_all(good_link()).await;
        cluster.wait_height(&[0, 1, 2, 3], top + 10, LIMIT).await;
        cluster.assert_consistent(supply);
        cluster.assert_no_blocks().await;
    });
}
