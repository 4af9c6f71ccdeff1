//! The data market end to end on a real chain node (50 ms blocks), real
//! data nodes over HTTP, the real sandbox and two validators' audit loops:
//! a data owner registers a dataset and the three example algorithms; a
//! buyer runs each on an honest host and gets its output with a signed
//! receipt; the validators' sampled re-runs pass; a host that tampers with
//! an output is caught by the re-run, disputed and slashed. Along the way,
//! strangers are refused the buyer's result and the job's inputs.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_data::{dataset_id_of_dir, DataAuditor, DataClient, DataNode, DataNodeSetup, Tamper};
use agora_sandbox::{algorithm_id, EXAMPLES};
use agora_tasks::{Shutdown, ShutdownTrigger};
use agora_testkit::GenesisBuilder;
use agora_types::data::{data_job_id, output_hash, params_hash};
use agora_types::network::DEV_CHAIN_ID;
use agora_types::{
    AccessPolicy, AlgorithmEntry, DataRunStatus, DatasetEntry, Hash32, Keypair, TxKind,
};

const WAIT: Duration = Duration::from_secs(120);
const TX: Duration = Duration::from_secs(30);

/// Poll `check` until it holds or [`WAIT`] passes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn chain(dir: &Path, funded: &[Keypair]) -> (ChainClient, ShutdownTrigger) {
    let genesis = GenesisBuilder::new(DEV_CHAIN_ID)
        .fund_keys(funded, 1_000_000_000_000)
        .params(|p| {
            // Every data job is audited, so the test needs no luck.
            p.audit.audit_rate_ppm = 1_000_000;
        })
        .build();
    let setup = agora_chain::NodeSetup {
        dir: dir.to_path_buf(),
        genesis,
        key: Keypair::generate(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        block_ms: 50,
        validator: None,
    };
    let (trigger, shutdown) = Shutdown::manual();
    let node = agora_chain::start(setup, shutdown).await.unwrap();
    (ChainClient::new(&node.rpc_url), trigger)
}

/// Start a data node for `key` holding the folder `data` (registered,
/// serving; the test settles by hand); the node, its URL, the dataset's id
/// and what keeps it running.
async fn host(
    dir: &Path,
    key: &Keypair,
    chain: &ChainClient,
    data: &Path,
    tamper: Tamper,
) -> (DataNode, String, Hash32, ShutdownTrigger) {
    let (trigger, shutdown) = Shutdown::manual();
    let setup = DataNodeSetup {
        chain_url: chain.url().to_string(),
        key: key.clone(),
        data_dir: dir.to_path_buf(),
        datasets: vec![data.to_path_buf()],
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        stake: 1_000_000,
        // Never within the test: it settles when it means to.
        settle_every: Duration::from_secs(3_600),
        retention: Duration::from_secs(600),
        deadline: Duration::from_secs(60),
        tamper,
    };
    let started = agora_data::start(setup, shutdown).await.unwrap();
    (started.node, started.url, started.datasets[0], trigger)
}

fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("x,y,label\n");
    for i in 0..600u32 {
        let (cx, cy) = [(0.0, 0.0), (50.0, 50.0), (100.0, 0.0)][(i % 3) as usize];
        let jitter = f64::from((i * 7919) % 100) / 100.0;
        csv.push_str(&format!("{},{},p{i}\n", cx + jitter, cy - jitter));
    }
    std::fs::write(dir.join("data.csv"), csv).unwrap();
}

/// Open a job for `buyer` on `host`; its id.
async fn open(
    chain: &ChainClient,
    buyer: &Keypair,
    dataset: Hash32,
    algorithm: Hash32,
    host: &Keypair,
    params: &str,
) -> Hash32 {
    open_with_fuel(
        chain,
        buyer,
        dataset,
        algorithm,
        host,
        params,
        5_000_000_000,
    )
    .await
}

/// [`open`] with a fuel budget of `max_fuel`.
async fn open_with_fuel(
    chain: &ChainClient,
    buyer: &Keypair,
    dataset: Hash32,
    algorithm: Hash32,
    host: &Keypair,
    params: &str,
    max_fuel: u64,
) -> Hash32 {
    let kind = TxKind::OpenDataJob {
        dataset,
        algorithm,
        host: host.account(),
        params_hash: params_hash(params.as_bytes()),
        max_fuel,
    };
    let done = chain.send_and_confirm(buyer, kind, TX).await.unwrap();
    data_job_id(&buyer.account(), done.nonce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_paid_audited_by_rerun_and_a_tampering_host_is_slashed() {
    let dir = tempfile::tempdir().unwrap();
    let [owner, honest, cheat, buyer, v1, v2, stranger] =
        std::array::from_fn(|i| Keypair::from_seed([i as u8 + 1; 32]));
    let (chain, _stop) = chain(
        &dir.path().join("chain"),
        &[
            owner.clone(),
            honest.clone(),
            cheat.clone(),
            buyer.clone(),
            v1.clone(),
            v2.clone(),
            stranger.clone(),
        ],
    )
    .await;
    let data = dir.path().join("dataset");
    write_dataset(&data);
    let (expected_id, _) = dataset_id_of_dir(&data).unwrap();
    let (honest_node, honest_url, id, _honest_running) = host(
        &dir.path().join("honest"),
        &honest,
        &chain,
        &data,
        Tamper::None,
    )
    .await;
    let (cheat_node, cheat_url, cheat_id, _cheat_running) = host(
        &dir.path().join("cheat"),
        &cheat,
        &chain,
        &data,
        Tamper::Output,
    )
    .await;
    assert_eq!(
        (id, cheat_id),
        (expected_id, expected_id),
        "the shelf and the pure hash agree"
    );

    // The owner registers the dataset for the three examples only.
    let ids: Vec<Hash32> = EXAMPLES
        .iter()
        .map(|e| Hash32(algorithm_id(e.wasm)))
        .collect();
    for (e, id) in EXAMPLES.iter().zip(&ids) {
        let algorithm = AlgorithmEntry {
            id: *id,
            owner: owner.account(),
            name: e.name.into(),
            price_per_run: 10,
        };
        chain
            .send_and_wait(&owner, TxKind::RegisterAlgorithm { algorithm }, TX)
            .await
            .unwrap();
    }
    let dataset = DatasetEntry {
        id,
        owner: owner.account(),
        name: "clusters".into(),
        description: "x,y,label: three noisy clusters".into(),
        price_per_run: 1_000,
        price_per_mfuel: 1,
        policy: AccessPolicy::Allow(ids.clone()),
        hosts: vec![honest.account(), cheat.account()],
    };
    chain
        .send_and_wait(&owner, TxKind::RegisterDataset { dataset }, TX)
        .await
        .unwrap();

    // Two validators bond and run their data-audit loops.
    for v in [&v1, &v2] {
        chain
            .send_and_wait(
                v,
                TxKind::BondValidator {
                    amount: 1_000_000,
                    take_ppm: 0,
                },
                TX,
            )
            .await
            .unwrap();
    }
    for (i, v) in [&v1, &v2].into_iter().enumerate() {
        let mut auditor = DataAuditor::new(
            chain.clone(),
            v.clone(),
            dir.path().join(format!("audit{i}")),
            200,
        )
        .unwrap();
        tokio::spawn(async move {
            loop {
                if let Err(e) = auditor.step().await {
                    eprintln!("auditor: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    let owner_before = chain.account(&owner.account()).await.unwrap().balance;
    // The buyer runs each example on the honest host.
    let honest_client = DataClient::new(&honest_url, honest.account());
    let params = ["", "column=x bins=5 quantiles=0.5,0.9", "columns=x,y k=3"];
    for ((e, alg), p) in EXAMPLES.iter().zip(&ids).zip(params) {
        let job = open(&chain, &buyer, id, *alg, &honest, p).await;
        // A stranger can neither run the buyer's job nor read its result.
        assert!(honest_client
            .run(&stranger, &job, p, Some(e.wasm))
            .await
            .is_err());
        let got = honest_client
            .run(&buyer, &job, p, Some(e.wasm))
            .await
            .unwrap();
        assert_eq!(
            got.status,
            DataRunStatus::Success,
            "{}: {}",
            e.name,
            got.stderr
        );
        got.receipt.verify().unwrap();
        // Written to disk before the answer, so a restart before settlement loses nothing.
        let record = dir
            .path()
            .join("honest/jobs")
            .join(format!("{}.json", job.to_hex()));
        assert!(record.exists(), "no job record at {}", record.display());
        let r = &got.receipt.receipt;
        assert_eq!(
            (r.job, r.dataset, r.algorithm, r.params_hash),
            (job, id, *alg, params_hash(p.as_bytes()))
        );
        assert_eq!(r.output_hash, output_hash(got.output.as_bytes()));
        let json: serde_json::Value = serde_json::from_str(&got.output).unwrap();
        assert!(json.is_object(), "{}", got.output);
        assert_eq!(r.charge, 1_000 + 10 + r.fuel_used.div_ceil(1_000_000));
        let again = honest_client.result(&buyer, &job).await.unwrap();
        assert_eq!(again.receipt, got.receipt);
        assert!(honest_client.result(&stranger, &job).await.is_err());
    }
    let kmeans: serde_json::Value = serde_json::from_str(
        &honest_client
            .result(
                &buyer,
                &open_and_run(&chain, &buyer, &honest_client, id, ids[2], &honest).await,
            )
            .await
            .unwrap()
            .output,
    )
    .unwrap();
    assert_eq!(kmeans["rows"], 600);
    let settled = honest_node
        .settle()
        .await
        .unwrap()
        .expect("four receipts queued");
    // A job whose fuel runs out pays only the fuel it burned, and gets no output.
    let buyer_before = chain.account(&buyer.account()).await.unwrap().balance;
    let starved = open_with_fuel(&chain, &buyer, id, ids[0], &honest, "", 100_000).await;
    let got = honest_client.run(&buyer, &starved, "", None).await.unwrap();
    assert_eq!(got.status, DataRunStatus::OutOfFuel);
    assert!(got.output.is_empty());
    assert_eq!(
        (got.receipt.receipt.fuel_used, got.receipt.receipt.charge),
        (100_000, 1)
    );
    honest_node
        .settle()
        .await
        .unwrap()
        .expect("one receipt queued");
    let on_chain = chain.settled_data_receipt(&starved).await.unwrap();
    assert_eq!(
        on_chain.receipt, got.receipt,
        "an honest host settles what it gave"
    );
    let fee = chain.params().await.unwrap().tx_fee;
    let buyer_after = chain.account(&buyer.account()).await.unwrap().balance;
    assert_eq!(
        buyer_before - buyer_after,
        fee + 1,
        "the escrow came back but for one unit of fuel"
    );
    // A stranger cannot read a job's inputs before or after settlement.
    let some_job = chain.data_batch(&settled).await.unwrap()[0].receipt.job;
    let inputs_dir = dir.path().join("stolen");
    assert!(honest_client
        .audit_inputs(&stranger, &some_job, &id, &inputs_dir)
        .await
        .is_err());
    assert!(!inputs_dir.join("data.csv").exists());

    eventually("the honest host's five jobs pass their audits", || async {
        chain
            .audits(&honest.account())
            .await
            .unwrap()
            .audits
            .audits_passed
            == 5
    })
    .await;
    // Four completed runs: the dataset's 1,000 and the algorithm's 10 each, to the owner.
    let owner_now = chain.account(&owner.account()).await.unwrap();
    assert_eq!(owner_now.balance - owner_before, 4 * 1_010);
    assert_eq!(owner_now.earned.data, 4 * 1_010);

    // The cheat serves a job with a tampered output and settles it.
    let cheat_client = DataClient::new(&cheat_url, cheat.account());
    let job = open(&chain, &buyer, id, ids[0], &cheat, "").await;
    let lie = cheat_client
        .run(&buyer, &job, "", Some(EXAMPLES[0].wasm))
        .await
        .unwrap();
    assert!(
        lie.output.ends_with(' '),
        "the tamper is visible to the buyer only by re-running"
    );
    cheat_node.settle().await.unwrap();
    eventually("the tampering host is slashed", || async {
        let status = chain.audits(&cheat.account()).await.unwrap();
        status.audits.slashed && !status.registered
    })
    .await;
    let honest_status = chain.audits(&honest.account()).await.unwrap();
    assert!(honest_status.registered && !honest_status.audits.slashed);
}

/// A host that gives the buyer one receipt and settles another (claiming
/// its deadline ended the run, so nobody pays and nothing is re-run) is
/// slashed on the buyer's report of the two; the reporter is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_settling_another_receipt_than_it_gave_is_slashed_on_report() {
    let dir = tempfile::tempdir().unwrap();
    let (owner, cheat, buyer) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let (chain, _chain_stop) = chain(
        &dir.path().join("chain"),
        &[owner.clone(), cheat.clone(), buyer.clone()],
    )
    .await;
    let data = dir.path().join("dataset");
    write_dataset(&data);
    let (cheat_node, url, id, _stop) = host(
        &dir.path().join("cheat"),
        &cheat,
        &chain,
        &data,
        Tamper::Settlement,
    )
    .await;
    let algorithm = AlgorithmEntry {
        id: Hash32(algorithm_id(EXAMPLES[0].wasm)),
        owner: owner.account(),
        name: EXAMPLES[0].name.into(),
        price_per_run: 10,
    };
    let kinds = [
        TxKind::RegisterAlgorithm {
            algorithm: algorithm.clone(),
        },
        TxKind::RegisterDataset {
            dataset: DatasetEntry {
                id,
                owner: owner.account(),
                name: "points".into(),
                description: String::new(),
                price_per_run: 1_000,
                price_per_mfuel: 1,
                policy: AccessPolicy::AnyRegistered,
                hosts: vec![cheat.account()],
            },
        },
    ];
    for kind in kinds {
        chain.send_and_confirm(&owner, kind, TX).await.unwrap();
    }
    let job = open(&chain, &buyer, id, algorithm.id, &cheat, "").await;
    let given = DataClient::new(&url, cheat.account())
        .run(&buyer, &job, "", Some(EXAMPLES[0].wasm))
        .await
        .unwrap();
    assert_eq!(given.status, DataRunStatus::Success);
    cheat_node
        .settle()
        .await
        .unwrap()
        .expect("one receipt queued");
    let settled = chain.settled_data_receipt(&job).await.unwrap();
    assert_ne!(settled.receipt, given.receipt);
    assert_eq!(
        settled.receipt.receipt.status,
        DataRunStatus::DeadlineExceeded
    );
    let before = chain.account(&buyer.account()).await.unwrap().balance;
    let report = TxKind::ReportDataEquivocation {
        first: Box::new(given.receipt),
        second: Box::new(settled.receipt),
    };
    chain.send_and_confirm(&buyer, report, TX).await.unwrap();
    let status = chain.audits(&cheat.account()).await.unwrap();
    assert!(status.audits.slashed && !status.registered);
    let params = chain.params().await.unwrap();
    let reward = 1_000_000 * u64::from(params.audit.auditor_reward_ppm) / 1_000_000;
    let after = chain.account(&buyer.account()).await.unwrap().balance;
    assert_eq!(after, before - params.tx_fee + reward);
}

/// Open and run one more k-means job on the honest host; its id.
async fn open_and_run(
    chain: &ChainClient,
    buyer: &Keypair,
    client: &DataClient,
    dataset: Hash32,
    kmeans: Hash32,
    host: &Keypair,
) -> Hash32 {
    let p = "columns=x,y k=3 iterations=20";
    let job = open(chain, buyer, dataset, kmeans, host, p).await;
    // The host holds the module from the earlier job: no need to send it.
    let got = client.run(buyer, &job, p, None).await.unwrap();
    assert_eq!(got.status, DataRunStatus::Success);
    job
}
