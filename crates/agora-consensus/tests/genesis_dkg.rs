//! The genesis DKG on the deterministic runtime: validators with their own
//! identity keys generate the genesis threshold key among themselves (no
//! dealer), then finalize blocks signed with it; an offline or garbage-sending
//! validator does not stop the ceremony; a restarted validator reuses its
//! stored share; no validator's secret state holds another's share.

mod common;

use std::time::Duration;

use agora_consensus::{
    epochs::{DurableSecretStore, DEALER_SEED_DOMAIN, GENESIS_DKG_SEED_DOMAIN},
    genesis_dkg::group_identity,
    FinalityVerifier,
};
use commonware_codec::Encode;
use commonware_consensus::types::Epoch;
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_glue::dkg::{types::EpochOutcome, SecretStore as _};
use commonware_runtime::{deterministic, Clock, Runner as _, Supervisor};

use common::{accounts_and_genesis, runner, seeds, Cluster, DkgRole, FUNDING};

const ACCOUNTS: usize = 4;
const LIMIT: Duration = Duration::from_secs(600);

/// Wait until every validator in `which` reported its genesis DKG outcome
/// `starts` times, checking on the way that nobody finalized a block before
/// the first outcome existed.
async fn wait_for_dkg(cluster: &mut Cluster, which: &[usize], starts: usize) {
    let which = which.to_vec();
    cluster
        .wait_until(LIMIT, "genesis DKG outcomes", |c| {
            let any = (0..c.n()).any(|i| !c.dkg_records(i).is_empty());
            if !any {
                for i in 0..c.n() {
                    assert_eq!(
                        c.height(i),
                        0,
                        "validator {i} finalized before the DKG output"
                    );
                }
            }
            which.iter().all(|&i| c.dkg_records(i).len() >= starts)
        })
        .await;
}

/// Every validator in `which` derived the same epoch 0: a successful DKG among
/// all genesis validators, replayed by them in the next epoch. Returns its
/// encoding.
fn assert_same_genesis_epoch(cluster: &Cluster, which: &[usize]) -> Vec<u8> {
    let participants = cluster.genesis_participants();
    let first = cluster.dkg_records(which[0])[0].genesis_epoch.clone();
    assert!(matches!(first.outcome, EpochOutcome::Success));
    assert_eq!(first.epoch, Epoch::zero());
    assert_eq!(
        first.players, participants,
        "players are the genesis validators"
    );
    assert_eq!(first.next_players, participants);
    assert_eq!(
        first.output.players(),
        &participants,
        "every validator dealt to"
    );
    let encoded = first.encode().to_vec();
    for &i in which {
        for record in cluster.dkg_records(i) {
            assert_eq!(
                record.genesis_epoch.encode().to_vec(),
                encoded,
                "validator {i} derived another epoch 0"
            );
        }
    }
    encoded
}

/// Validators in `which` each hold a share of the agreed polynomial at their
/// own position, and no two hold the same one.
fn assert_own_shares(cluster: &Cluster, which: &[usize]) {
    let participants = cluster.genesis_participants();
    let record = cluster.dkg_records(which[0])[0].genesis_epoch.clone();
    let sharing = record.output.public();
    let group = *sharing.public();
    let mut seen = Vec::new();
    for &i in which {
        let share = cluster.dkg_records(i)[0]
            .share
            .clone()
            .unwrap_or_else(|| panic!("validator {i} holds no share"));
        let position = participants.position(&cluster.pk(i)).expect("participant");
        assert_eq!(
            usize::try_from(share.index.get()).unwrap(),
            position,
            "validator {i}'s share sits at its own position"
        );
        let public = share.public::<MinSig>();
        assert_eq!(
            public,
            sharing.partial_public(share.index).unwrap(),
            "validator {i}'s share is on the public polynomial"
        );
        assert_ne!(public, group, "validator {i} holds the group secret");
        assert!(!seen.contains(&share.encode().to_vec()), "shares repeat");
        seen.push(share.encode().to_vec());
    }
}

/// Open a crashed validator's secret store once its aborted tasks have
/// released it (waiting on the simulated clock, bounded).
async fn open_when_released(
    context: &deterministic::Context,
    partition: String,
    identity: &[u8],
    domain: &str,
) -> DurableSecretStore<deterministic::Context> {
    for _ in 0..1_000 {
        match DurableSecretStore::open_in_domain(
            context.child("inspect"),
            partition.clone(),
            identity,
            domain,
        )
        .await
        {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("already open") => {
                context.sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("opening {partition}: {e}"),
        }
    }
    panic!("{partition} never released");
}

/// Finalization certificates verify against the DKG's group key alone.
fn assert_certificates_verify(cluster: &Cluster, i: usize, identity: &[u8]) {
    let verifier = FinalityVerifier::new(identity).expect("group key decodes");
    let log = cluster.logs[i].lock().unwrap();
    let mut checked = 0;
    for (height, certificate) in &log.certificates {
        let (block_id, _, randomness) = log.blocks[height];
        let derived = verifier
            .verify(certificate, block_id)
            .unwrap_or_else(|e| panic!("certificate at {height} does not verify: {e}"));
        assert_eq!(Some(derived), randomness, "randomness at {height}");
        checked += 1;
    }
    assert!(checked > 0, "validator {i} stored no certificate");
}

/// Four validators with their own keys run the DKG, agree on its output, each
/// hold only their own share, and then finalize blocks whose certificates
/// verify under the DKG's group key; afterwards no validator's secret stores
/// (genesis DKG and resharing) hold another validator's share.
#[test]
fn genesis_dkg_completes_then_blocks_finalize() {
    for seed in seeds(2) {
        runner(seed).start(|context| async move {
            let (_, genesis) = accounts_and_genesis(ACCOUNTS);
            let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
            let mut cluster =
                Cluster::start_dkg(context.child("cluster"), &[DkgRole::Honest; 4], genesis).await;
            let all = [0, 1, 2, 3];
            wait_for_dkg(&mut cluster, &all, 1).await;
            let epoch = assert_same_genesis_epoch(&cluster, &all);
            assert_own_shares(&cluster, &all);
            cluster.wait_height(&all, 10, LIMIT).await;
            assert!(cluster.assert_consistent(supply) >= 10);
            let record = cluster.dkg_records(0)[0].genesis_epoch.clone();
            assert_certificates_verify(&cluster, 2, &group_identity(&record));
            cluster.assert_no_blocks().await;

            // Stop everyone, then read each validator's private stores back.
            for i in all {
                cluster.crash(i).await;
            }
            let shares: Vec<Vec<u8>> = all
                .iter()
                .map(|&i| {
                    cluster.dkg_records(i)[0]
                        .share
                        .clone()
                        .unwrap()
                        .encode()
                        .to_vec()
                })
                .collect();
            for i in all {
                let identity = cluster.members[i].identity.encode();
                let mut genesis_store = open_when_released(
                    &context,
                    format!("g{i}-secrets"),
                    &identity,
                    GENESIS_DKG_SEED_DOMAIN,
                )
                .await;
                let mut reshare_store = open_when_released(
                    &context,
                    format!("v{i}-secrets"),
                    &identity,
                    DEALER_SEED_DOMAIN,
                )
                .await;
                let stored = genesis_store.get_share(Epoch::zero()).await.unwrap();
                assert_eq!(
                    stored.encode().to_vec(),
                    shares[i],
                    "validator {i} DKG share"
                );
                let stored = reshare_store.get_share(Epoch::zero()).await.unwrap();
                assert_eq!(
                    stored.encode().to_vec(),
                    shares[i],
                    "validator {i} epoch 0 share"
                );
                for (j, other) in shares.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    for e in 0..3 {
                        for store_share in [
                            genesis_store.get_share(Epoch::new(e)).await,
                            reshare_store.get_share(Epoch::new(e)).await,
                        ]
                        .into_iter()
                        .flatten()
                        {
                            assert_ne!(
                                &store_share.encode().to_vec(),
                                other,
                                "validator {i} stores validator {j}'s share"
                            );
                        }
                    }
                }
            }
            // The epoch 0 every validator agreed on is deterministic per seed.
            assert!(!epoch.is_empty());
        });
    }
}

/// A genesis DKG among `roles` under `seed`: the honest validators finish
/// it, agree on epoch 0, each hold only their own share, and finalize 8
/// blocks consistently; then `more` checks the cluster.
fn honest_ones_finish_the_dkg(seed: u64, roles: [DkgRole; 4], more: fn(&Cluster)) {
    runner(seed).start(|context| async move {
        let (_, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster = Cluster::start_dkg(context.child("cluster"), &roles, genesis).await;
        let honest: Vec<usize> = (0..roles.len())
            .filter(|&i| roles[i] == DkgRole::Honest)
            .collect();
        wait_for_dkg(&mut cluster, &honest, 1).await;
        assert_same_genesis_epoch(&cluster, &honest);
        assert_own_shares(&cluster, &honest);
        cluster.wait_height(&honest, 8, LIMIT).await;
        assert!(cluster.assert_consistent_among(&honest, supply) >= 8);
        more(&cluster);
    });
}

/// One of four validators never comes online: the other three still finish
/// the DKG (with every genesis validator as a player) and finalize blocks.
#[test]
fn genesis_dkg_survives_an_offline_validator() {
    use DkgRole::{Honest, Offline};
    honest_ones_finish_the_dkg(11, [Honest, Honest, Honest, Offline], |cluster| {
        assert!(cluster.dkg_records(3).is_empty());
    });
}

/// One of four validators floods the genesis DKG channels with malformed
/// dealings and garbage instead of dealing: the honest three finish the DKG
/// and finalize blocks.
#[test]
fn genesis_dkg_survives_malformed_dealings() {
    use DkgRole::{Garbage, Honest};
    honest_ones_finish_the_dkg(12, [Honest, Garbage, Honest, Honest], |_| {});
}

/// A validator restarted after the DKG does not run it again: it reports the
/// same epoch 0 and the same share (from its store), and signs on.
#[test]
fn genesis_dkg_restart_reuses_the_stored_share() {
    runner(13).start(|context| async move {
        let (_, genesis) = accounts_and_genesis(ACCOUNTS);
        let supply = (ACCOUNTS as u128) * u128::from(FUNDING);
        let mut cluster =
            Cluster::start_dkg(context.child("cluster"), &[DkgRole::Honest; 4], genesis).await;
        let all = [0, 1, 2, 3];
        wait_for_dkg(&mut cluster, &all, 1).await;
        cluster.wait_height(&all, 5, LIMIT).await;
        cluster.crash(2).await;
        let top = (0..4).map(|i| cluster.height(i)).max().unwrap();
        cluster.spawn(2);
        wait_for_dkg(&mut cluster, &[2], 2).await;
        let records = cluster.dkg_records(2);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1].genesis_epoch.encode(),
            records[0].genesis_epoch.encode(),
            "the restart reports the stored epoch 0"
        );
        let before = records[0].share.clone().expect("share before the restart");
        let after = records[1].share.clone().expect("share after the restart");
        assert_eq!(
            after.encode(),
            before.encode(),
            "the restart reuses the stored share"
        );
        assert_same_genesis_epoch(&cluster, &all);
        // Stop another validator: finalizing now needs validator 2's signatures.
        cluster.crash(3).await;
        cluster.wait_height(&[0, 1, 2], top + 5, LIMIT).await;
        assert!(cluster.assert_consistent_among(&[0, 1, 2], supply) >= top + 5);
    });
}
