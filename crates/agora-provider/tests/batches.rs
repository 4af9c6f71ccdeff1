//! Receipt batches end to end over real HTTP and a real chain node: finished
//! jobs queue durably, the committer seals them by count or age and commits
//! the roots on chain (retrying a refused commit), and the provider serves
//! each job's transcript with a Merkle proof that checks against the root
//! the chain recorded, only to the validator the chain drew for the job
//! (signed requests, checked against the chain by the real
//! `ChainAuditGate`). The engine is a scripted double (the real engine's
//! receipts are covered by tests/real_model_service.rs); batching does not look at
//! what the engine generated.

use std::sync::Arc;
use std::time::Duration;

use agora_chain::{ChainConfig, Node};
use agora_chain_client::{ChainClient, ClientError};
use agora_provider::{
    register_on_chain, BatchCommitter, BatchConfig, ChainAuditGate, Provider, Pruned,
    TranscriptStore,
};
use agora_testkit::{GenesisBuilder, TwoTokenEngine};
use agora_types::access::{TranscriptAuth, TRANSCRIPT_AUTH_HEADER};
use agora_types::provenance::{ProviderReceipt, ReceiptInclusion};
use agora_types::{
    Hash32, JobEvent, JobInput, JobProof, JobRequest, Keypair, ModelEntry, Price, SamplingParams,
    TxKind,
};
use agora_wire::headers::{PAYMENT_CHANNEL, PAYMENT_HEADER};
use tokio::sync::oneshot;

const PRICE: Price = Price {
    input_per_1k: 10,
    output_per_1k: 20,
};

fn model() -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(b"batched model"),
        name: "batched".into(),
        architecture: "none".into(),
        quantization: "none".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner: agora_types::AccountId([0; 32]),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

const CHAIN_ID: &str = "batches-test";

/// A chain producing a block every 20 ms, serving RPC, where every job is
/// drawn for audit and `auditor` is the only validator; stops when the sender drops.
async fn chain(
    provider: &Keypair,
    auditor: &Keypair,
    dir: &std::path::Path,
) -> (ChainClient, oneshot::Sender<()>) {
    chain_with(provider, auditor, dir, |_| {}).await
}

/// [`chain`] with other parameters.
async fn chain_with(
    provider: &Keypair,
    auditor: &Keypair,
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut agora_ledger::Params),
) -> (ChainClient, oneshot::Sender<()>) {
    let genesis = GenesisBuilder::new(CHAIN_ID)
        .fund(provider.account(), 1_000_000)
        .fund(auditor.account(), 10_000_000)
        .model(model())
        .params(|p| {
            p.audit.audit_rate_ppm = 1_000_000;
            adjust(p);
        })
        .build();
    let config = ChainConfig {
        block_interval: Duration::from_millis(20),
        ..ChainConfig::default()
    };
    let node = Node::open(dir, &genesis, Keypair::generate(), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = node.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(node.run(async move {
        let _ = stopped.await;
    }));
    (ChainClient::new(&url), stop)
}

/// A served provider: its URL, its transcript store, and how to stop it.
struct Served {
    url: String,
    store: Arc<TranscriptStore>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serve the provider until `stop` fires, checking transcript requests
/// against `chain` when given.
async fn serve(key: &Keypair, dir: &std::path::Path, chain: Option<&ChainClient>) -> Served {
    let store = TranscriptStore::open(&dir.join("transcripts.redb")).unwrap();
    let mut provider = Provider::new(
        CHAIN_ID,
        Arc::new(TwoTokenEngine::new()),
        key.clone(),
        model().id,
        PRICE,
        store,
    );
    if let Some(chain) = chain {
        let gate = ChainAuditGate::connect(chain.clone()).await.unwrap();
        provider = provider
            .with_audit_gate(Arc::new(gate))
            .with_channels(Arc::new(chain.clone()));
    }
    let store = provider.transcripts();
    let router = provider.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Served {
        url,
        store,
        stop,
        task,
    }
}

/// [`serve`] checked against `chain`, registered there as a provider of the model.
async fn serve_registered(key: &Keypair, dir: &std::path::Path, chain: &ChainClient) -> Served {
    let served = serve(key, dir, Some(chain)).await;
    register_on_chain(chain, key, &served.url, &model(), PRICE, 10_000, true)
        .await
        .unwrap();
    served
}

/// Run one job to completion; returns its job id.
async fn run_job(url: &str, seed: u64) -> Hash32 {
    run_job_paid(url, seed, false).await
}

/// Run one job, saying a payment channel pays for it when `paid`.
async fn run_job_paid(url: &str, seed: u64, paid: bool) -> Hash32 {
    let job = JobRequest {
        model: model().id,
        input: JobInput::Text {
            prompt: "hello".into(),
        },
        params: SamplingParams::new(4, 0.0, 1.0, vec![], seed),
    };
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/jobs"))
        .json(&job);
    if paid {
        request = request.header(PAYMENT_HEADER, PAYMENT_CHANNEL);
    }
    let body = request.send().await.unwrap().text().await.unwrap();
    let last = body
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:"))
        .last()
        .unwrap()
        .trim()
        .to_string();
    match serde_json::from_str(&last).unwrap() {
        JobEvent::Done { receipt, .. } => receipt.receipt.id,
        other => panic!("job did not finish: {other:?}"),
    }
}

/// `GET /v1/batches/{root}/{index}`, signed as `who` at `at_ms` when given.
async fn fetch_as(
    url: &str,
    root: &str,
    index: &str,
    who: Option<(&Keypair, u64)>,
) -> (reqwest::StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("{url}/v1/batches/{root}/{index}"));
    if let (Some((key, at_ms)), Ok(r), Ok(i)) = (who, root.parse::<Hash32>(), index.parse()) {
        let auth = TranscriptAuth::sign(key, CHAIN_ID, &r, i, at_ms);
        request = request.header(TRANSCRIPT_AUTH_HEADER, auth.to_header());
    }
    let r = request.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// `GET /v1/receipts/{job}`, public: the receipt and its inclusion proof, if committed.
async fn public_receipt(url: &str, job: &Hash32) -> Option<ProviderReceipt> {
    let resp = reqwest::get(agora_wire::provider::receipt_url(url, job))
        .await
        .unwrap();
    if resp.status() == 404 {
        return None;
    }
    assert_eq!(resp.status(), 200);
    let r: ProviderReceipt = resp.json().await.unwrap();
    assert_eq!(r.receipt.receipt.id, *job);
    Some(r)
}

/// Job `job`'s public inclusion proof: under `root`, at `index`, checked.
async fn assert_included(url: &str, job: &Hash32, root: &Hash32, index: u64) -> ReceiptInclusion {
    let r = public_receipt(url, job).await.expect("a known job");
    let inc = r.inclusion.expect("committed");
    assert_eq!((inc.root, inc.proof.index), (*root, index));
    agora_types::provenance::check_inclusion(&r.receipt, root, &inc.proof).unwrap();
    inc
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn jobs_are_committed_in_batches_and_proven_against_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (key, auditor) = (Keypair::generate(), Keypair::generate());
    let (chain, _stop) = chain(&key, &auditor, &dir.path().join("chain")).await;
    let bond = TxKind::BondValidator {
        amount: agora_ledger::DEFAULT_MIN_VALIDATOR_BOND,
        take_ppm: 0,
    };
    chain
        .send_and_wait(&auditor, bond, Duration::from_secs(10))
        .await
        .unwrap();
    // `_stop` keeps the server up until the test ends.
    let Served {
        url,
        store,
        stop: _stop,
        ..
    } = serve(&key, dir.path(), Some(&chain)).await;
    let fetch_proof = |root: String, index: String| {
        let (url, auditor) = (url.clone(), auditor.clone());
        async move { fetch_as(&url, &root, &index, Some((&auditor, now_ms()))).await }
    };
    let by_count = BatchConfig {
        max_jobs: 2,
        max_age: Duration::from_secs(3600),
        ..BatchConfig::default()
    };
    let mut committer = BatchCommitter::new(
        store.clone(),
        chain.clone(),
        key.clone(),
        model().id,
        by_count,
    );

    let mut jobs = Vec::new();
    for seed in 0..3 {
        jobs.push(run_job(&url, seed).await);
    }
    assert_eq!(store.pending_jobs().unwrap(), 3);

    // Not registered yet: the chain refuses the commit, the sealed batch stays queued.
    match committer.tick().await {
        Err(agora_provider::ProviderError::Chain(ClientError::Rejected { code, .. })) => {
            assert_eq!(code, "not_a_provider")
        }
        other => panic!("expected a refused commit, got {other:?}"),
    }
    assert_eq!(store.pending_jobs().unwrap(), 1);
    let queued = store.batches_to_commit().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].jobs, jobs[..2]);

    register_on_chain(&chain, &key, &url, &model(), PRICE, 10_000, true)
        .await
        .unwrap();
    let committed = committer.tick().await.unwrap();
    assert_eq!(committed.len(), 1);
    let (first_root, first_height) = committed[0];
    assert!(store.batches_to_commit().unwrap().is_empty());
    assert_eq!(
        store.sealed(&first_root).unwrap().unwrap().committed_at,
        Some(first_height)
    );
    // Anyone can fetch a committed job's receipt and proof (no transcript);
    // a job not yet committed has no proof, an unknown one no receipt.
    for (i, job) in jobs[..2].iter().enumerate() {
        let inc = assert_included(&url, job, &first_root, i as u64).await;
        assert_eq!((inc.height, inc.channel), (Some(first_height), None));
    }
    let pending = public_receipt(&url, &jobs[2]).await.unwrap();
    assert_eq!(pending.inclusion, None);
    assert!(public_receipt(&url, &Hash32::digest(b"never ran"))
        .await
        .is_none());
    // One job pending, below the count and younger than the age: nothing to do.
    assert!(committer.tick().await.unwrap().is_empty());
    assert_eq!(store.pending_jobs().unwrap(), 1);

    // The age trigger seals the last job.
    let by_age = BatchConfig {
        max_jobs: 2,
        max_age: Duration::ZERO,
        ..BatchConfig::default()
    };
    let mut aged = BatchCommitter::new(
        store.clone(),
        chain.clone(),
        key.clone(),
        model().id,
        by_age,
    );
    let committed = aged.tick().await.unwrap();
    assert_eq!(committed.len(), 1);
    let second_root = committed[0].0;
    assert_eq!(store.pending_jobs().unwrap(), 0);

    // The chain lists both batches with the committed roots and counts.
    let page = chain.batches(None).await.unwrap();
    let on_chain: Vec<(Hash32, u64, u64)> = page
        .batches
        .iter()
        .map(|b| (b.root, b.count, b.height))
        .collect();
    assert_eq!(
        on_chain,
        vec![
            (first_root, 2, first_height),
            (second_root, 1, committed[0].1)
        ]
    );
    assert!(page.batches.iter().all(|b| b.provider == key.account()));

    // Every job's transcript proves against the on-chain root at its index.
    for (root, index, job) in [
        (first_root, 0u64, jobs[0]),
        (first_root, 1, jobs[1]),
        (second_root, 0, jobs[2]),
    ] {
        // The chain draws a batch's audits in the block after its commit.
        let (mut status, mut body) = fetch_proof(root.to_hex(), index.to_string()).await;
        for _ in 0..100 {
            if status != 403 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            (status, body) = fetch_proof(root.to_hex(), index.to_string()).await;
        }
        assert_eq!(status, 200, "{body}");
        let proof: JobProof = serde_json::from_str(&body).unwrap();
        assert_eq!(proof.transcript.receipt.receipt.id, job);
        let leaves = if root == first_root { 2 } else { 1 };
        proof.verify(&root, index, leaves).unwrap();
        // The same proof does not pass for another index, tree size or root.
        assert!(proof.verify(&root, index + 1, leaves).is_err());
        assert!(proof.verify(&root, index, leaves + 1).is_err());
        let other = if root == first_root {
            second_root
        } else {
            first_root
        };
        assert!(proof.verify(&other, index, leaves).is_err());
    }
    // Attack (issue 13, #10): roots are public on chain and indices easy to
    // guess; nobody but the drawn validator reads the prompts and outputs.
    let root = first_root.to_hex();
    let stranger = Keypair::generate();
    let (status, body) = fetch_as(&url, &root, "0", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = fetch_as(&url, &root, "0", Some((&stranger, now_ms()))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_drawn"), "{body}");
    // The drawn auditor's signature replayed an hour later, or for another job, is refused.
    let (status, _) = fetch_as(&url, &root, "0", Some((&auditor, now_ms() - 3_600_000))).await;
    assert_eq!(status, 401);
    let forged = TranscriptAuth::sign(&auditor, CHAIN_ID, &first_root, 1, now_ms());
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/batches/{root}/0"))
        .header(TRANSCRIPT_AUTH_HEADER, forged.to_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Not drawn (no such leaf, no such batch) is 403: nothing is revealed.
    assert_eq!(fetch_proof(root.clone(), "2".into()).await.0, 403);
    assert_eq!(
        fetch_proof(Hash32::digest(b"none").to_hex(), "0".into())
            .await
            .0,
        403
    );
    assert_eq!(fetch_proof("zz".into(), "0".into()).await.0, 400);
    assert_eq!(fetch_proof(root, "-1".into()).await.0, 400);
}

/// Issue 13, #8 and #1: channel-paid jobs have one commitment path. The
/// provider takes a voucher only with the ids of jobs it ran, settles it,
/// the chain draws audits on the settlement like on a commit, and the
/// drawn validator gets each job's transcript with a proof against the
/// settled root; the jobs never enter the provider's own batches.
#[tokio::test]
async fn channel_paid_jobs_are_settled_audited_and_proven() {
    let dir = tempfile::tempdir().unwrap();
    let (key, auditor, client) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let (chain, _stop) = chain(&key, &auditor, &dir.path().join("chain")).await;
    let wait = Duration::from_secs(10);
    let bond = TxKind::BondValidator {
        amount: agora_ledger::DEFAULT_MIN_VALIDATOR_BOND,
        take_ppm: 0,
    };
    chain.send_and_wait(&auditor, bond, wait).await.unwrap();
    let fund = TxKind::Transfer {
        to: client.account(),
        amount: 1_000_000,
    };
    chain.send_and_wait(&auditor, fund, wait).await.unwrap();
    let Served {
        url,
        store,
        stop: _stop,
        ..
    } = serve_registered(&key, dir.path(), &chain).await;
    let open = TxKind::OpenChannel {
        provider: key.account(),
        model: model().id,
        deposit: 100_000,
    };
    let opened = chain.send_and_confirm(&client, open, wait).await.unwrap();
    let channel = agora_types::channel_id(CHAIN_ID, &client.account(), opened.nonce);

    let mut jobs = Vec::new();
    for seed in 0..3 {
        jobs.push(run_job_paid(&url, seed, true).await);
    }
    let unpaid = run_job(&url, 9).await;
    // Only the unpaid job waits for a batch of the provider's own.
    assert_eq!(store.pending_jobs().unwrap(), 1);
    let leaves: Vec<Hash32> = jobs
        .iter()
        .map(|j| agora_types::audit::receipt_leaf(&store.get(j).unwrap().unwrap().receipt))
        .collect();
    let deliver = |cumulative: u64, leaves: Vec<Hash32>, first_job: u64, ids: Vec<Hash32>| {
        let (url, client) = (url.clone(), client.clone());
        async move {
            let d = agora_types::VoucherDelivery {
                voucher: agora_types::Voucher {
                    channel,
                    cumulative,
                    receipts_root: agora_types::merkle::root(&leaves),
                    jobs: leaves.len() as u64,
                }
                .sign(&client),
                first_job,
                jobs: ids,
            };
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/vouchers"))
                .json(&d)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // Attack: a voucher over a job this provider never ran (or the unpaid
    // job under a made-up leaf) is refused, so no unprovable root is settled.
    let (status, body) = deliver(5, vec![leaves[0], Hash32::ZERO], 0, vec![jobs[0], unpaid]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("receipts_root_mismatch"), "{body}");
    let (status, body) =
        deliver(5, vec![Hash32::ZERO], 0, vec![Hash32::digest(b"never ran")]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("unknown_job"), "{body}");
    // The payer's order, delivered in two steps.
    let order = [jobs[2], jobs[0], jobs[1]];
    let ordered: Vec<Hash32> = [2, 0, 1].iter().map(|&i| leaves[i]).collect();
    let (status, body) = deliver(10, ordered[..2].to_vec(), 0, order[..2].to_vec()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = deliver(15, ordered.clone(), 2, order[2..].to_vec()).await;
    assert_eq!(status, 200, "{body}");

    let settler = agora_provider::VoucherSettler::new(
        store.clone(),
        chain.clone(),
        key.clone(),
        Duration::from_secs(3600),
    );
    // Delivered but not settled: no proof yet.
    assert_eq!(
        public_receipt(&url, &jobs[0]).await.unwrap().inclusion,
        None
    );
    assert_eq!(settler.settle_once().await.unwrap(), 1);
    let on_chain = chain.channel(&channel).await.unwrap();
    assert_eq!((on_chain.paid, on_chain.jobs), (15, 3));
    let root = agora_types::merkle::root(&ordered);
    assert_eq!(on_chain.receipts_root, root);
    // The settlement is a batch of the channel's model, audited like a commit.
    let batch = loop {
        let page = chain.batches(None).await.unwrap();
        let b = page.batches.into_iter().find(|b| b.root == root).unwrap();
        if b.seed.is_some() {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((batch.first_index, batch.count), (0, 3));
    assert_eq!(batch.model, Some(model().id));
    assert_eq!(batch.audits.len(), 3, "every job is drawn here");
    // The public proofs are under the settled root, in the payer's order.
    for (index, job) in order.iter().enumerate() {
        let inc = assert_included(&url, job, &root, index as u64).await;
        assert_eq!(inc.channel, Some(channel));
        assert!(inc.height.is_some());
    }
    assert_eq!(public_receipt(&url, &unpaid).await.unwrap().inclusion, None);
    for (index, job) in order.iter().enumerate() {
        let (status, body) = fetch_as(
            &url,
            &root.to_hex(),
            &index.to_string(),
            Some((&auditor, now_ms())),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let proof: JobProof = serde_json::from_str(&body).unwrap();
        assert_eq!(proof.transcript.receipt.receipt.id, *job);
        proof.verify(&root, index as u64, 3).unwrap();
    }
    // A stranger still reads nothing.
    let stranger = Keypair::generate();
    let (status, _) = fetch_as(&url, &root.to_hex(), "0", Some((&stranger, now_ms()))).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn pending_jobs_and_queued_batches_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let served = serve(&key, dir.path(), None).await;
    let mut jobs = Vec::new();
    for seed in 0..3 {
        jobs.push(run_job(&served.url, seed).await);
    }
    let sealed = served.store.seal_pending(2).unwrap().unwrap();
    assert_eq!(sealed.jobs, jobs[..2]);
    // Stop the server and drop every handle on the database, then reopen it.
    drop(served.store);
    served.stop.send(()).unwrap();
    served.task.await.unwrap().unwrap();
    let reopened = TranscriptStore::open(&dir.path().join("transcripts.redb")).unwrap();
    assert_eq!(reopened.pending_jobs().unwrap(), 1);
    let queued = reopened.batches_to_commit().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].jobs, jobs[..2]);
    assert_eq!(queued[0].root, sealed.root);
    let last = reopened.seal_pending(10).unwrap().unwrap();
    assert_eq!(last.jobs, vec![jobs[2]]);
    assert!(reopened.seal_pending(10).unwrap().is_none());
    assert_eq!(reopened.batches_to_commit().unwrap().len(), 2);
}

/// Privacy: a provider keeps a job's prompt and output only while the chain
/// can still ask for them. Once its batch's audit and dispute windows have
/// passed, the committer deletes the transcripts: `GET /v1/transcripts/{id}`
/// answers 404 and no proof is served. Jobs not yet committed stay.
#[tokio::test]
async fn transcripts_are_deleted_once_no_audit_or_dispute_can_reach_them() {
    let dir = tempfile::tempdir().unwrap();
    let (key, auditor) = (Keypair::generate(), Keypair::generate());
    let (chain, _stop) = chain_with(&key, &auditor, &dir.path().join("chain"), |p| {
        p.audit.audit_window_blocks = 3;
        p.audit.dispute_window_blocks = 2;
    })
    .await;
    let Served {
        url,
        store,
        stop: _stop,
        ..
    } = serve_registered(&key, dir.path(), &chain).await;
    let config = BatchConfig {
        max_jobs: 1,
        max_age: Duration::from_secs(3600),
        prune_every: Duration::ZERO,
        ..BatchConfig::default()
    };
    let mut committer = BatchCommitter::new(
        store.clone(),
        chain.clone(),
        key.clone(),
        model().id,
        config,
    );
    let old = run_job(&url, 1).await;
    let committed = committer.tick().await.unwrap();
    let (root, height) = committed[0];
    let transcript_status = |id: Hash32| {
        let url = format!("{url}/v1/transcripts/{id}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    // Inside the windows nothing goes.
    assert_eq!(committer.prune().await.unwrap(), Pruned::default());
    assert_eq!(transcript_status(old).await, 200);
    let pending = run_job(&url, 2).await;

    // Wait (on the chain's height) until no verdict or vote can name the batch.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while chain.head().await.unwrap().height <= height + 3 + 2 {
        assert!(std::time::Instant::now() < deadline, "the chain stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pruned = committer.prune().await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            batches: 1,
            transcripts: 1
        }
    );
    assert!(store.get(&old).unwrap().is_none());
    assert!(store.sealed(&root).unwrap().is_none());
    assert!(store.job_proof(&root, 0).unwrap().is_none());
    assert_eq!(transcript_status(old).await, 404);
    // The job not yet committed is still there, and a second pass deletes nothing.
    assert!(store.get(&pending).unwrap().is_some());
    assert_eq!(transcript_status(pending).await, 200);
    assert_eq!(committer.prune().await.unwrap(), Pruned::default());
}
