//! Seeded fault simulations. Each seed draws its own schedule of crashes and
//! restarts, partitions and heals, slow and lossy links, or runs one Byzantine
//! (equivocating) validator among 4. Every seed checks safety (no two blocks
//! finalized at one height), liveness once the faults heal, one state root per
//! height on every honest node, every transfer applied exactly once and total
//! supply conserved.
//!
//! CI runs a few seeds. The nightly run is
//! `AGORA_SIM_SEEDS=1000 cargo test --release -p agora-consensus --test faults -- --nocapture`;
//! it reports every failing seed, and `AGORA_SIM_SEED=<seed>` replays one.

mod common;

use std::time::Duration;

use agora_types::Keypair;
use commonware_runtime::{Clock, Runner, Supervisor};
use commonware_utils::probability;
use rand010::{rngs::StdRng, RngExt, SeedableRng};

use common::{
    accounts_and_genesis, expected_balances, good_link, run_seeds, seeds, transfers, Cluster, Role,
    FUNDING,
};

const VALIDATORS: usize = 4;
const ACCOUNTS: usize = 6;
/// Transfer rounds per scenario (each round is one transfer per account).
const ROUNDS: u64 = 8;
const LIMIT: Duration = Duration::from_secs(1_200);

/// A random link: 5–400 ms latency, jitter up to half of it, 70–100% delivery.
fn random_link(rng: &mut StdRng) -> commonware_p2p::simulated::Link {
    let latency = rng.random_range(5..400u64);
    commonware_p2p::simulated::Link {
        latency: Duration::from_millis(latency),
        jitter: Duration::from_millis(rng.random_range(0..=latency / 2)),
        success_rate: probability!(rng.random_range(70..=100u64), 100u64),
    }
}

/// Wait until every transfer is included and all of `which` share the top height
/// plus a few more blocks, then check the invariants over them.
async fn settle_and_check(cluster: &mut Cluster, which: &[usize], keys: &[Keypair]) {
    let keys_count = keys.len();
    let which_pools = which.to_vec();
    cluster
        .wait_until(LIMIT, "all transfers included", |c| {
            which_pools.iter().all(|&i| c.pools[i].is_empty())
        })
        .await;
    let top = which.iter().map(|&i| cluster.height(i)).max().unwrap();
    cluster.wait_height(which, top + 3, LIMIT).await;
    let supply = (keys_count as u128) * u128::from(FUNDING);
    let common = cluster.assert_consistent_among(which, supply);
    assert!(
        common > top,
        "finalization did not resume: {common} <= {top}"
    );

    let expected = expected_balances(keys_count, ROUNDS);
    for &i in which {
        let log = cluster.logs[i].lock().unwrap();
        let state = log.last.as_ref().expect("validator delivered blocks");
        let included: usize = log.txs.values().sum();
        assert_eq!(
            included,
            keys_count * ROUNDS as usize,
            "validator {i}: every transfer exactly once"
        );
        let balances: Vec<u64> = keys
            .iter()
            .map(|k| state.account(&k.account()).balance)
            .collect();
        assert_eq!(balances, expected, "validator {i} balances");
    }
}

/// One seed of crashes, restarts, partitions and bad links among 4 honest
/// validators; returns the runtime's audit digest of the whole execution.
fn run_faults(seed: u64) -> String {
    common::runner(seed).start(|context| async move {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xFA17);
        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let mut cluster = Cluster::start(context.child("cluster"), VALIDATORS, genesis).await;
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let txs = transfers(&keys, ROUNDS);
        let mut batches = txs.chunks(ACCOUNTS * 2);
        let mut down: Option<usize> = None;
        for _ in 0..6 {
            if let Some(batch) = batches.next() {
                cluster.submit_all(batch);
            }
            match rng.random_range(0..5u8) {
                // Crash one validator (or restart the one that is down).
                0 | 1 => match down.take() {
                    Some(i) => cluster.spawn(i),
                    None => {
                        let i = rng.random_range(0..VALIDATORS);
                        cluster.crash(i).await;
                        down = Some(i);
                    }
                },
                // Partition: isolate one validator, or split 2 | 2.
                2 => {
                    let mut order = all.clone();
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.random_range(0..=i));
                    }
                    let cut = if rng.random_bool(0.5) { 1 } else { 2 };
                    let (left, right) = order.split_at(cut);
                    for &a in left {
                        for &b in right {
                            cluster.cut(a, b).await;
                        }
                    }
                }
                // Every link slow, jittery and lossy.
                3 => {
                    let link = random_link(&mut rng);
                    cluster.link_all(link).await;
                }
                // Heal every link.
                _ => cluster.link_all(good_link()).await,
            }
            let pause = rng.random_range(500..5_000u64);
            context.sleep(Duration::from_millis(pause)).await;
        }
        for batch in batches {
            cluster.submit_all(batch);
        }
        if let Some(i) = down {
            cluster.spawn(i);
        }
        cluster.link_all(good_link()).await;
        settle_and_check(&mut cluster, &all, &keys).await;
        cluster.assert_no_blocks().await;
        context.auditor().state()
    })
}

/// One seed with a Byzantine validator (conflicting voter or equivocating leader,
/// at a seeded position) among 3 honest ones, over seeded links.
fn run_byzantine(seed: u64) {
    common::runner(seed).start(|context| async move {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xB12A);
        let byzantine = rng.random_range(0..VALIDATORS);
        let role = if rng.random_bool(0.5) {
            Role::Conflicter
        } else {
            Role::Equivocator
        };
        let mut roles = vec![Role::Honest; VALIDATORS];
        roles[byzantine] = role;
        let honest: Vec<usize> = (0..VALIDATORS).filter(|i| *i != byzantine).collect();

        let (keys, genesis) = accounts_and_genesis(ACCOUNTS);
        let mut cluster = Cluster::start_roles(context.child("cluster"), &roles, genesis).await;
        // Honest links stay lossless (3 of 4 is exactly a quorum), but may be slow.
        if rng.random_bool(0.5) {
            let link = commonware_p2p::simulated::Link {
                success_rate: probability!(1.0),
                ..random_link(&mut rng)
            };
            cluster.link_all(link).await;
        }
        cluster.submit_all(&transfers(&keys, ROUNDS));
        cluster.wait_height(&honest, 10, LIMIT).await;
        settle_and_check(&mut cluster, &honest, &keys).await;

        // Only the Byzantine validator may be blocked; a conflicting voter always is.
        let byzantine_key = cluster.pk(byzantine);
        let blocked = cluster.oracle.blocked().await.expect("oracle");
        for (by, whom) in &blocked {
            assert_eq!(whom, &byzantine_key, "{by:?} blocked an honest validator");
        }
        if role == Role::Conflicter {
            assert!(!blocked.is_empty(), "conflicting votes went unnoticed");
        }
    });
}

/// Seeded crash/restart, partition and bad-link schedules keep safety and liveness.
#[test]
fn fault_schedules_keep_safety_and_liveness() {
    run_seeds(
        "fault_schedules_keep_safety_and_liveness",
        &seeds(4),
        |seed| {
            run_faults(seed);
        },
    );
}

/// One equivocating validator among 4 cannot break safety or stop finalization.
#[test]
fn byzantine_validator_cannot_break_safety() {
    run_seeds(
        "byzantine_validator_cannot_break_safety",
        &seeds(4),
        run_byzantine,
    );
}

/// A fault schedule replays identically from its seed.
#[test]
fn fault_schedule_is_deterministic() {
    assert_eq!(run_faults(5), run_faults(5));
}
