//! The data market through real blocks: datasets and algorithms registered
//! by their owners, jobs escrowing their most, settlements paying exactly
//! what the charge policy says and refunding the rest, receipts committed
//! as batches that validators audit, a failed re-run slashing the host
//! through the dispute path; and every way a host or buyer might cheat
//! (settling another's job, twice, above the fuel cap, at an inflated
//! charge, for other parameters, cancelling early) refused.

mod common;

use agora_ledger::{State, TxError};
use agora_types::audit::{batch_id, dispute_id};
use agora_types::data::{data_job_id, output_hash, params_hash, DataPrices};
use agora_types::{
    AccessPolicy, AccountId, AlgorithmEntry, DataReceipt, DataRunStatus, DatasetEntry, Hash32,
    Keypair, ModelEntry, Price, SignedDataReceipt, TxKind,
};
use proptest::prelude::*;

use common::{block, send, verdict};

const CHAIN: &str = "data-test";
const DATASET_PRICE: u64 = 1_000;
const ALGORITHM_PRICE: u64 = 300;
const PER_MFUEL: u64 = 7;
const MAX_FUEL: u64 = 10_000_000;
const TIMEOUT: u64 = 5;

fn model() -> ModelEntry {
    common::model(b"data host model", "hosted")
}

fn ok(s: &mut State, key: &Keypair, kind: TxKind) {
    if let Some(e) = send(s, key, kind) {
        panic!("rejected: {e}");
    }
}

/// Keys: 0 the host, 1 the dataset owner, 2 the algorithm owner, 3 the
/// buyer, 4..=6 validators, 7 a second provider (not a host).
struct World {
    s: State,
    k: Vec<Keypair>,
    dataset: Hash32,
    algorithm: Hash32,
    supply: u128,
}

fn register_provider(replayable: bool) -> TxKind {
    TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:9000".into(),
        models: vec![model().id],
        price: Price {
            input_per_1k: 1,
            output_per_1k: 1,
        },
        stake: 1_000,
        replayable,
    }
}

fn dataset_entry(owner: &Keypair, hosts: Vec<AccountId>, policy: AccessPolicy) -> DatasetEntry {
    DatasetEntry {
        id: Hash32::digest(b"weather.csv"),
        owner: owner.account(),
        name: "weather".into(),
        description: "date,temp_c,rain_mm\nDaily, one station.".into(),
        price_per_run: DATASET_PRICE,
        price_per_mfuel: PER_MFUEL,
        policy,
        hosts,
    }
}

fn world_with(host_replayable: bool) -> World {
    let k = common::keys(8, 40);
    let mut g = common::genesis(CHAIN, &k, 100_000, vec![model()]);
    g.params.audit.audit_rate_ppm = 1_000_000;
    g.params.data.job_timeout_blocks = TIMEOUT;
    g.params.data.registration_fee = 50;
    let mut s = g.state().unwrap();
    let supply = s.total_supply();
    ok(&mut s, &k[0], register_provider(host_replayable));
    ok(&mut s, &k[7], register_provider(true));
    for v in &k[4..=6] {
        ok(
            &mut s,
            v,
            TxKind::BondValidator {
                amount: 100,
                take_ppm: 0,
            },
        );
    }
    let algorithm = AlgorithmEntry {
        id: Hash32::digest(b"csv_stats.wasm"),
        owner: k[2].account(),
        name: "csv_stats".into(),
        price_per_run: ALGORITHM_PRICE,
    };
    ok(
        &mut s,
        &k[2],
        TxKind::RegisterAlgorithm {
            algorithm: algorithm.clone(),
        },
    );
    let entry = dataset_entry(
        &k[1],
        vec![k[0].account()],
        AccessPolicy::Allow(vec![algorithm.id]),
    );
    ok(
        &mut s,
        &k[1],
        TxKind::RegisterDataset {
            dataset: entry.clone(),
        },
    );
    World {
        s,
        k,
        dataset: entry.id,
        algorithm: algorithm.id,
        supply,
    }
}

fn world() -> World {
    world_with(true)
}

fn open_job(kind_params: &[u8], dataset: Hash32, algorithm: Hash32, host: AccountId) -> TxKind {
    TxKind::OpenDataJob {
        dataset,
        algorithm,
        host,
        params_hash: params_hash(kind_params),
        max_fuel: MAX_FUEL,
    }
}

impl World {
    /// The buyer opens a job on the host; its id.
    fn open(&mut self) -> Hash32 {
        let buyer = &self.k[3];
        let id = data_job_id(&buyer.account(), self.s.account(&buyer.account()).nonce);
        ok(
            &mut self.s,
            buyer,
            open_job(b"k=3", self.dataset, self.algorithm, self.k[0].account()),
        );
        id
    }

    /// The receipt the host would sign for `job` ending in `status` after `fuel`.
    fn receipt(&self, job: Hash32, status: DataRunStatus, fuel: u64) -> DataReceipt {
        let prices = self.s.data_jobs[&job].prices;
        DataReceipt {
            job,
            dataset: self.dataset,
            algorithm: self.algorithm,
            params_hash: params_hash(b"k=3"),
            status,
            output_hash: output_hash(b"{\"rows\":3}"),
            fuel_used: fuel,
            max_fuel: MAX_FUEL,
            charge: prices.charge(status, fuel).total(),
        }
    }

    fn balance(&self, i: usize) -> u64 {
        self.s.account(&self.k[i].account()).balance
    }

    fn conserved(&self) {
        assert_eq!(
            self.s.total_supply() + self.s.burned,
            self.supply + self.s.emitted
        );
    }
}

fn settle(receipts: Vec<SignedDataReceipt>) -> TxKind {
    TxKind::SettleDataJobs { receipts }
}

#[test]
fn a_completed_job_pays_each_party_and_refunds_the_rest() {
    let mut w = world();
    let buyer_before = w.balance(3);
    let job = w.open();
    let escrow = DATASET_PRICE + ALGORITHM_PRICE + 70; // 10 M fuel at 7 per million
    assert_eq!(w.s.data_jobs[&job].escrow, escrow);
    assert_eq!(w.balance(3), buyer_before - escrow);
    w.conserved();
    let (host, owner, author) = (w.balance(0), w.balance(1), w.balance(2));
    let receipt = w
        .receipt(job, DataRunStatus::Success, 2_500_000)
        .sign(&w.k[0]);
    let batch = batch_id(&w.k[0].account(), w.s.account(&w.k[0].account()).nonce);
    ok(&mut w.s, &w.k[0].clone(), settle(vec![receipt.clone()]));
    assert_eq!(w.balance(0), host + 18, "fuel: ceil(2.5 M x 7 / 1 M)");
    assert_eq!(w.balance(1), owner + DATASET_PRICE);
    assert_eq!(w.balance(2), author + ALGORITHM_PRICE);
    assert_eq!(
        w.balance(3),
        buyer_before - DATASET_PRICE - ALGORITHM_PRICE - 18
    );
    assert_eq!(
        w.s.earnings(&w.k[1].account()).data,
        u128::from(DATASET_PRICE)
    );
    assert!(w.s.data_jobs.is_empty());
    assert_eq!(w.s.data_batches[&batch], vec![receipt.clone()]);
    let b = &w.s.batches[&batch];
    assert_eq!((b.provider, b.count, b.model), (w.k[0].account(), 1, None));
    assert_eq!(b.root, agora_types::merkle::root(&[receipt.leaf()]));
    w.conserved();
}

#[test]
fn each_outcome_is_charged_only_what_the_policy_says() {
    let cases = [
        (DataRunStatus::Exit(2), DATASET_PRICE + ALGORITHM_PRICE + 7),
        (DataRunStatus::Trap, 7),
        (DataRunStatus::OutOfFuel, 7),
        (DataRunStatus::MemoryExceeded, 7),
        (DataRunStatus::OutputTooLarge, 7),
        (DataRunStatus::DeadlineExceeded, 0),
    ];
    for (status, paid) in cases {
        let mut w = world();
        let before = w.balance(3);
        let job = w.open();
        let receipt = w.receipt(job, status, 1_000_000).sign(&w.k[0]);
        ok(&mut w.s, &w.k[0].clone(), settle(vec![receipt]));
        assert_eq!(before - w.balance(3), paid, "{status:?}");
        w.conserved();
    }
}

#[test]
fn a_host_cannot_settle_others_jobs_twice_above_the_cap_or_at_its_own_price() {
    let mut w = world();
    let job = w.open();
    let host = w.k[0].clone();
    let good = w.receipt(job, DataRunStatus::Success, 1_000);
    // Another provider, signing a receipt of its own for the job.
    let other = w.k[7].clone();
    assert!(matches!(
        send(&mut w.s, &other, settle(vec![good.clone().sign(&other)])),
        Some(TxError::NotYourDataJob {
            action: "settle",
            ..
        })
    ));
    // The host, submitting a receipt someone else signed.
    assert!(matches!(
        send(&mut w.s, &host, settle(vec![good.clone().sign(&other)])),
        Some(TxError::NotYourDataJob { .. })
    ));
    let mut forged = good.clone().sign(&host);
    forged.receipt.fuel_used += 1;
    assert!(matches!(
        send(&mut w.s, &host, settle(vec![forged])),
        Some(TxError::ReceiptMismatch { .. })
    ));
    for bad in [
        DataReceipt {
            fuel_used: MAX_FUEL + 1,
            charge: u64::MAX,
            ..good.clone()
        },
        DataReceipt {
            charge: good.charge + 1,
            ..good.clone()
        },
        DataReceipt {
            max_fuel: MAX_FUEL + 1,
            ..good.clone()
        },
        DataReceipt {
            status: DataRunStatus::Trap,
            ..good.clone()
        },
        DataReceipt {
            params_hash: params_hash(b"k=4"),
            ..good.clone()
        },
        DataReceipt {
            algorithm: Hash32::digest(b"other"),
            ..good.clone()
        },
    ] {
        assert!(
            matches!(
                send(&mut w.s, &host, settle(vec![bad.clone().sign(&host)])),
                Some(TxError::ReceiptMismatch { .. })
            ),
            "{bad:?}"
        );
    }
    let signed = good.sign(&host);
    assert!(matches!(
        send(
            &mut w.s,
            &host,
            settle(vec![signed.clone(), signed.clone()])
        ),
        Some(TxError::InvalidField {
            field: "receipts",
            ..
        })
    ));
    assert_eq!(
        w.s.data_jobs.len(),
        1,
        "nothing settled by a refused settlement"
    );
    ok(&mut w.s, &host, settle(vec![signed.clone()]));
    assert_eq!(
        send(&mut w.s, &host, settle(vec![signed])),
        Some(TxError::UnknownDataJob(job))
    );
    assert!(matches!(
        send(&mut w.s, &host, settle(vec![])),
        Some(TxError::InvalidField {
            field: "receipts",
            ..
        })
    ));
    w.conserved();
}

#[test]
fn the_buyer_cancels_only_its_own_job_and_only_after_the_timeout() {
    let mut w = world();
    let before = w.balance(3);
    let job = w.open();
    let opened = w.s.data_jobs[&job].opened_at;
    let buyer = w.k[3].clone();
    assert_eq!(
        send(&mut w.s, &buyer, TxKind::CancelDataJob { job }),
        Some(TxError::JobNotTimedOut {
            job,
            from: opened + TIMEOUT
        })
    );
    while w.s.height + 1 < opened + TIMEOUT {
        block(&mut w.s, None);
    }
    let stranger = w.k[1].clone();
    assert!(matches!(
        send(&mut w.s, &stranger, TxKind::CancelDataJob { job }),
        Some(TxError::NotYourDataJob {
            action: "cancel",
            ..
        })
    ));
    ok(&mut w.s, &buyer, TxKind::CancelDataJob { job });
    assert_eq!(w.balance(3), before);
    // The host's late receipt finds no job to be paid from.
    let late = w.receipt_for_cancelled(job);
    assert_eq!(
        send(&mut w.s, &w.k[0].clone(), settle(vec![late])),
        Some(TxError::UnknownDataJob(job))
    );
    w.conserved();
}

impl World {
    fn receipt_for_cancelled(&self, job: Hash32) -> SignedDataReceipt {
        DataReceipt {
            job,
            dataset: self.dataset,
            algorithm: self.algorithm,
            params_hash: params_hash(b"k=3"),
            status: DataRunStatus::Success,
            output_hash: Hash32::ZERO,
            fuel_used: 1,
            max_fuel: MAX_FUEL,
            charge: DATASET_PRICE + ALGORITHM_PRICE + 1,
        }
        .sign(&self.k[0])
    }
}

#[test]
fn jobs_the_policy_or_the_hosts_do_not_allow_are_refused_before_escrow() {
    let mut w = world();
    let buyer = w.k[3].clone();
    let before = w.balance(3);
    let stranger_algo = AlgorithmEntry {
        id: Hash32::digest(b"exfiltrate.wasm"),
        owner: buyer.account(),
        name: "copy-everything".into(),
        price_per_run: 0,
    };
    ok(
        &mut w.s,
        &buyer,
        TxKind::RegisterAlgorithm {
            algorithm: stranger_algo.clone(),
        },
    );
    let paid_fee = before - w.balance(3);
    assert_eq!(
        send(
            &mut w.s,
            &buyer,
            open_job(b"", w.dataset, stranger_algo.id, w.k[0].account())
        ),
        Some(TxError::PolicyRefuses {
            dataset: w.dataset,
            algorithm: stranger_algo.id
        })
    );
    assert_eq!(
        send(
            &mut w.s,
            &buyer,
            open_job(b"", w.dataset, w.algorithm, w.k[7].account())
        ),
        Some(TxError::NotAHost {
            dataset: w.dataset,
            host: w.k[7].account()
        })
    );
    assert_eq!(
        send(
            &mut w.s,
            &buyer,
            open_job(b"", Hash32::digest(b"nope"), w.algorithm, w.k[0].account())
        ),
        Some(TxError::UnknownDataset(Hash32::digest(b"nope")))
    );
    assert_eq!(
        send(
            &mut w.s,
            &buyer,
            open_job(b"", w.dataset, Hash32::digest(b"nope"), w.k[0].account())
        ),
        Some(TxError::UnknownAlgorithm(Hash32::digest(b"nope")))
    );
    for max_fuel in [0, w.s.params.data.max_job_fuel + 1] {
        let kind = TxKind::OpenDataJob {
            dataset: w.dataset,
            algorithm: w.algorithm,
            host: w.k[0].account(),
            params_hash: Hash32::ZERO,
            max_fuel,
        };
        assert!(matches!(
            send(&mut w.s, &buyer, kind),
            Some(TxError::InvalidField {
                field: "max_fuel",
                ..
            })
        ));
    }
    // A buyer who cannot cover the most a run costs gets no job.
    let poor = Keypair::from_seed([99; 32]);
    ok(
        &mut w.s,
        &w.k[5].clone(),
        TxKind::Transfer {
            to: poor.account(),
            amount: 1_000,
        },
    );
    assert!(matches!(
        send(
            &mut w.s,
            &poor,
            open_job(b"", w.dataset, w.algorithm, w.k[0].account())
        ),
        Some(TxError::InsufficientBalance { .. })
    ));
    assert_eq!(w.balance(3), before - paid_fee);
    assert!(w.s.data_jobs.is_empty());
    w.conserved();
}

#[test]
fn entries_name_their_sender_live_hosts_and_a_new_id() {
    let mut w = world();
    let owner = w.k[1].clone();
    let taken = dataset_entry(&owner, vec![w.k[0].account()], AccessPolicy::AnyRegistered);
    assert_eq!(
        send(
            &mut w.s,
            &owner,
            TxKind::RegisterDataset {
                dataset: taken.clone()
            }
        ),
        Some(TxError::DatasetExists(taken.id))
    );
    let fresh = DatasetEntry {
        id: Hash32::digest(b"fresh"),
        ..taken
    };
    // Naming someone else as owner would send them nothing and the sender everything.
    assert!(matches!(
        send(
            &mut w.s,
            &w.k[2].clone(),
            TxKind::RegisterDataset {
                dataset: fresh.clone()
            }
        ),
        Some(TxError::OwnerMismatch { .. })
    ));
    // A host that is not a provider has no collateral to answer for receipts.
    let unstaked = DatasetEntry {
        hosts: vec![w.k[3].account()],
        ..fresh.clone()
    };
    assert!(matches!(
        send(
            &mut w.s,
            &owner,
            TxKind::RegisterDataset { dataset: unstaked }
        ),
        Some(TxError::NotAHost { .. })
    ));
    for bad in [
        DatasetEntry {
            hosts: vec![],
            ..fresh.clone()
        },
        DatasetEntry {
            hosts: vec![w.k[0].account(), w.k[0].account()],
            ..fresh.clone()
        },
        DatasetEntry {
            policy: AccessPolicy::Allow(vec![]),
            ..fresh.clone()
        },
        DatasetEntry {
            name: String::new(),
            ..fresh.clone()
        },
        DatasetEntry {
            description: "\u{7}".into(),
            ..fresh.clone()
        },
    ] {
        assert!(matches!(
            send(&mut w.s, &owner, TxKind::RegisterDataset { dataset: bad }),
            Some(TxError::InvalidField { .. })
        ));
    }
    ok(
        &mut w.s,
        &owner,
        TxKind::RegisterDataset {
            dataset: fresh.clone(),
        },
    );
    assert_eq!(w.s.datasets[&fresh.id], fresh);
    let algorithm = w.s.algorithms[&w.algorithm].clone();
    assert_eq!(
        send(
            &mut w.s,
            &w.k[2].clone(),
            TxKind::RegisterAlgorithm { algorithm }
        ),
        Some(TxError::AlgorithmExists(w.algorithm))
    );
    w.conserved();
}

/// A failed re-run of a data job opens a dispute at once, even for a host
/// whose inference is judged statistically, and a confirming committee
/// slashes the host's collateral; a slashed host takes no new jobs.
#[test]
fn a_failed_rerun_slashes_the_host_through_the_dispute_path() {
    let mut w = world_with(false);
    let job = w.open();
    let host = w.k[0].clone();
    let receipt = w.receipt(job, DataRunStatus::Success, 5_000).sign(&host);
    let batch = batch_id(&host.account(), w.s.account(&host.account()).nonce);
    ok(&mut w.s, &host, settle(vec![receipt]));
    block(&mut w.s, None);
    let (_, auditor) = w.s.batches[&batch].audits[0];
    let auditor = w.k.iter().find(|k| k.account() == auditor).unwrap().clone();
    ok(&mut w.s, &auditor, verdict(batch, 0, false));
    let dispute = dispute_id(&batch, 0);
    assert!(
        w.s.disputes.contains_key(&dispute),
        "no statistical grace for data jobs"
    );
    block(&mut w.s, None);
    let committee = w.s.disputes[&dispute].committee.clone();
    assert!(!committee.is_empty());
    for member in committee.iter().take(committee.len() / 2 + 1) {
        let key = w.k.iter().find(|k| k.account() == *member).unwrap().clone();
        ok(
            &mut w.s,
            &key,
            TxKind::VoteDispute {
                dispute,
                agree: true,
            },
        );
    }
    let record = &w.s.provider_audits[&host.account()];
    assert!(record.slashed);
    assert_eq!(record.slashed_amount, 1_000);
    assert!(!w.s.providers.contains_key(&host.account()));
    let buyer = w.k[3].clone();
    assert!(matches!(
        send(
            &mut w.s,
            &buyer,
            open_job(b"", w.dataset, w.algorithm, host.account())
        ),
        Some(TxError::NotAHost { .. })
    ));
    w.conserved();
}

fn equivocation(first: &SignedDataReceipt, second: &SignedDataReceipt) -> TxKind {
    TxKind::ReportDataEquivocation {
        first: Box::new(first.clone()),
        second: Box::new(second.clone()),
    }
}

#[test]
fn a_host_that_settles_another_receipt_than_the_buyers_is_slashed_on_report() {
    let mut w = world();
    let job = w.open();
    let (host, buyer, other) = (w.k[0].clone(), w.k[3].clone(), w.k[7].clone());
    // The buyer got a success; the host settles a deadline that charges nothing.
    let given = w.receipt(job, DataRunStatus::Success, 5_000).sign(&host);
    let settled = w
        .receipt(job, DataRunStatus::DeadlineExceeded, 5_000)
        .sign(&host);
    let by_other = w.receipt(job, DataRunStatus::Success, 5_000).sign(&other);
    ok(&mut w.s, &host, settle(vec![settled.clone()]));
    let other_job = w.open();
    let unrelated = w.receipt(other_job, DataRunStatus::Success, 1).sign(&host);
    let mut forged = settled.clone();
    forged.receipt.output_hash = output_hash(b"forged");
    let refused = [
        (equivocation(&settled, &settled), "the same"),
        (equivocation(&settled, &unrelated), "different jobs"),
        (equivocation(&settled, &forged), "does not verify"),
        (equivocation(&settled, &by_other), "different hosts"),
    ];
    for (kind, why) in refused {
        match send(&mut w.s, &buyer, kind) {
            Some(TxError::NotEquivocation(reason)) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    assert!(!w
        .s
        .provider_audits
        .get(&host.account())
        .is_some_and(|a| a.slashed));
    w.conserved();
    let before = w.balance(3);
    ok(&mut w.s, &buyer, equivocation(&given, &settled));
    let record = &w.s.provider_audits[&host.account()];
    assert!(record.slashed);
    assert_eq!(record.slashed_amount, 1_000);
    assert!(!w.s.providers.contains_key(&host.account()));
    let ppm = u64::from(w.s.params.audit.auditor_reward_ppm);
    let fee = w.s.params.tx_fee;
    assert_eq!(w.balance(3), before - fee + 1_000 * ppm / 1_000_000);
    assert!(matches!(
        send(&mut w.s, &buyer, equivocation(&given, &settled)),
        Some(TxError::ProviderSlashed(_))
    ));
    w.conserved();
}

#[test]
fn data_batches_leave_the_state_with_their_audit_window() {
    let mut w = world();
    let job = w.open();
    let host = w.k[0].clone();
    let receipt = w.receipt(job, DataRunStatus::Success, 1).sign(&host);
    let batch = batch_id(&host.account(), w.s.account(&host.account()).nonce);
    ok(&mut w.s, &host, settle(vec![receipt]));
    let window = w.s.params.audit.audit_window_blocks;
    let root = w.s.root();
    assert!(w.s.data_batches.contains_key(&batch));
    for _ in 0..=window {
        block(&mut w.s, None);
    }
    assert!(!w.s.batches.contains_key(&batch));
    assert!(!w.s.data_batches.contains_key(&batch));
    assert_ne!(w.s.root(), root);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever mix of outcomes and fuel the host reports, the buyer never
    /// pays more than it escrowed, the three payees get exactly the policy's
    /// split, and no base unit appears or vanishes.
    #[test]
    fn settlements_conserve_supply_and_never_exceed_the_escrow(
        runs in proptest::collection::vec((0u8..7, 0..=MAX_FUEL), 1..6)
    ) {
        let mut w = world();
        let host = w.k[0].clone();
        let start: Vec<u64> = (0..4).map(|i| w.balance(i)).collect();
        let mut receipts = Vec::new();
        let mut expected = [0u64; 4];
        for (code, fuel) in runs {
            let status = match code {
                0 => DataRunStatus::Success,
                1 => DataRunStatus::Exit(1),
                2 => DataRunStatus::Trap,
                3 => DataRunStatus::OutOfFuel,
                4 => DataRunStatus::MemoryExceeded,
                5 => DataRunStatus::OutputTooLarge,
                _ => DataRunStatus::DeadlineExceeded,
            };
            let job = w.open();
            let prices: DataPrices = w.s.data_jobs[&job].prices;
            let split = prices.charge(status, fuel);
            prop_assert!(split.total() <= w.s.data_jobs[&job].escrow);
            expected[0] += split.host;
            expected[1] += split.dataset_owner;
            expected[2] += split.algorithm_owner;
            expected[3] += split.total();
            receipts.push(w.receipt(job, status, fuel).sign(&host));
        }
        ok(&mut w.s, &host, settle(receipts));
        prop_assert_eq!(w.balance(0) - start[0], expected[0]);
        prop_assert_eq!(w.balance(1) - start[1], expected[1]);
        prop_assert_eq!(w.balance(2) - start[2], expected[2]);
        prop_assert_eq!(start[3] - w.balance(3), expected[3]);
        prop_assert!(w.s.data_jobs.is_empty());
        w.conserved();
    }
}
