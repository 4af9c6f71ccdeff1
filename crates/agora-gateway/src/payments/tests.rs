//! Payer tests: a recording [`Funding`] double and a real HTTP voucher receiver.

use std::sync::atomic::{AtomicUsize, Ordering};

use agora_types::audit::receipt_leaf;
use agora_types::{
    hash_tokens, merkle, Hash32, Price, Receipt, SamplingParams, Usage, VoucherDelivery,
};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use super::*;

/// Records opens and top-ups; channel ids count up.
#[derive(Default)]
struct Recorder {
    client: Option<AccountId>,
    opens: Mutex<Vec<Amount>>,
    top_ups: Mutex<Vec<Amount>>,
}

impl Funding for Arc<Recorder> {
    fn client(&self) -> AccountId {
        self.client.expect("set")
    }

    async fn open(&self, _: AccountId, _: ModelId, deposit: Amount) -> Result<Hash32, PayError> {
        let mut opens = self.opens.lock().unwrap();
        opens.push(deposit);
        Ok(Hash32([opens.len() as u8; 32]))
    }

    async fn top_up(&self, _: Hash32, amount: Amount) -> Result<(), PayError> {
        self.top_ups.lock().unwrap().push(amount);
        Ok(())
    }

    async fn balance(&self) -> Result<Amount, PayError> {
        Ok(BALANCE)
    }
}

/// The recording funder's free balance.
const BALANCE: Amount = 5_000_000;

/// A provider's voucher endpoint: keeps the vouchers that arrive (and the
/// job ids delivered with them), refusing the first `refuse` posts.
struct Receiver {
    got: Arc<Mutex<Vec<SignedVoucher>>>,
    jobs: Arc<Mutex<Vec<Hash32>>>,
    endpoint: String,
}

async fn receiver(refuse: usize) -> Receiver {
    let got: Arc<Mutex<Vec<SignedVoucher>>> = Arc::default();
    let jobs: Arc<Mutex<Vec<Hash32>>> = Arc::default();
    let held = jobs.clone();
    let seen = Arc::new(AtomicUsize::new(0));
    let sink = got.clone();
    let app = Router::new().route(
        "/v1/vouchers",
        post(move |Json(d): Json<VoucherDelivery>| {
            let (sink, seen, held) = (sink.clone(), seen.clone(), held.clone());
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < refuse {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                // Like the provider: jobs must follow on from those held.
                let mut held = held.lock().unwrap();
                if d.first_job > held.len() as u64 {
                    return StatusCode::CONFLICT;
                }
                held.truncate(d.first_job as usize);
                held.extend(d.jobs);
                sink.lock().unwrap().push(d.voucher);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        got,
        jobs,
        endpoint,
    }
}

fn provider(key: &Keypair, endpoint: &str) -> ProviderInfo {
    ProviderInfo {
        id: key.account(),
        endpoint: endpoint.into(),
        models: vec![Hash32([9; 32])],
        price: Price {
            input_per_1k: 1000,
            output_per_1k: 1000,
        },
        stake: 1,
        registered_at: 1,
        replayable: true,
    }
}

fn receipt(key: &Keypair, tokens: u32) -> SignedReceipt {
    let usage = Usage {
        prompt_tokens: tokens,
        completion_tokens: 1,
    };
    Receipt {
        chain_id: "payments-test".into(),
        id: Hash32(rand::random()),
        provider: key.account(),
        model: Hash32([9; 32]),
        prompt_hash: hash_tokens(&[1]),
        output_hash: hash_tokens(&[2]),
        text_hash: Hash32::ZERO,
        params: SamplingParams::new(8, 0.0, 1.0, vec![], 1),
        usage,
        price: Price {
            input_per_1k: 1000,
            output_per_1k: 1000,
        },
        cost: u64::from(tokens) + 1,
        timestamp_ms: 1,
        commitments: Hash32::ZERO,
    }
    .sign(key)
}

fn payer(deposit: Amount) -> (Arc<Payer<Arc<Recorder>>>, Arc<Recorder>, Keypair) {
    let key = Keypair::generate();
    let funding = Arc::new(Recorder {
        client: Some(key.account()),
        ..Recorder::default()
    });
    let config = PayerConfig {
        deposit,
        retry_every: Duration::from_secs(3600),
        ..PayerConfig::default()
    };
    (
        Payer::new(funding.clone(), key.clone(), config),
        funding,
        key,
    )
}

/// A payer key, a recording funder for it and a config (escrow 1,000, no
/// timed retries), for payers built over a store.
fn persistent_parts() -> (Keypair, Arc<Recorder>, PayerConfig) {
    let key = Keypair::generate();
    let funding = Arc::new(Recorder {
        client: Some(key.account()),
        ..Recorder::default()
    });
    let config = PayerConfig {
        deposit: 1_000,
        retry_every: Duration::from_secs(3600),
        ..PayerConfig::default()
    };
    (key, funding, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_jobs_get_cumulative_monotone_vouchers_and_top_ups() {
    let (payer, funding, client) = payer(50);
    let rx = receiver(0).await;
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &rx.endpoint);
    let receipts: Vec<SignedReceipt> = (0..24).map(|i| receipt(&pkey, i)).collect();
    let total: Amount = receipts.iter().map(|r| r.receipt.cost).sum();
    let runs = receipts.iter().map(|r| payer.pay(&prov, r));
    let vouchers = futures::future::join_all(runs).await;
    assert!(vouchers.iter().all(Result::is_ok), "{vouchers:?}");

    // Jobs that finished while a voucher was on its way share the next one.
    let took: Vec<&SignedVoucher> = vouchers
        .iter()
        .filter_map(|v| v.as_ref().ok()?.as_ref())
        .collect();
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), took.len());
    assert!((1..=24).contains(&got.len()));
    for pair in got.windows(2) {
        assert!(pair[1].voucher.cumulative > pair[0].voucher.cumulative);
        assert!(pair[1].voucher.jobs > pair[0].voucher.jobs);
    }
    let last = got.last().unwrap();
    assert_eq!(last.voucher.cumulative, total);
    assert_eq!(last.voucher.jobs, 24);
    last.verify(&client.account()).unwrap();
    // The root covers every receipt, in the order the jobs were paid.
    let books = payer.books().await;
    assert_eq!(books.len(), 1);
    let mut leaves: Vec<Hash32> = receipts.iter().map(receipt_leaf).collect();
    let mut paid = books[0].leaves.clone();
    assert_eq!(last.voucher.receipts_root, merkle::root(&paid));
    leaves.sort();
    paid.sort();
    assert_eq!(leaves, paid);
    // The provider was sent each job id once, in the root's order.
    let delivered = rx.jobs.lock().unwrap().clone();
    assert_eq!(delivered, books[0].jobs);
    let by_id: HashMap<Hash32, Hash32> = receipts
        .iter()
        .map(|r| (r.receipt.id, receipt_leaf(r)))
        .collect();
    let in_order: Vec<Hash32> = delivered.iter().map(|id| by_id[id]).collect();
    assert_eq!(merkle::root(&in_order), last.voucher.receipts_root);
    // One channel, topped up whenever a job would have overdrawn it.
    assert_eq!(*funding.opens.lock().unwrap(), vec![50]);
    let escrow: Amount = 50 + funding.top_ups.lock().unwrap().iter().sum::<Amount>();
    assert!(escrow >= total, "escrow {escrow} < owed {total}");
    assert!(!funding.top_ups.lock().unwrap().is_empty());
    for v in &got {
        assert!(v.voucher.cumulative <= escrow);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_delivery_is_retried_with_the_latest_voucher() {
    let (payer, _, _) = payer(1_000);
    let rx = receiver(2).await;
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &rx.endpoint);
    let (a, b) = (receipt(&pkey, 3), receipt(&pkey, 5));
    let err = payer.pay(&prov, &a).await.unwrap_err();
    assert!(matches!(err, PayError::Delivery { .. }), "{err}");
    assert!(payer.pay(&prov, &b).await.is_err());
    assert!(payer.books().await[0].behind());
    assert!(rx.got.lock().unwrap().is_empty());

    payer.retry_once().await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one voucher covers both jobs");
    assert_eq!(got[0].voucher.cumulative, 4 + 6);
    assert_eq!(got[0].voucher.jobs, 2);
    assert_eq!(
        *rx.jobs.lock().unwrap(),
        vec![a.receipt.id, b.receipt.id],
        "the retry carries the job ids the failed deliveries did not"
    );
    assert!(!payer.books().await[0].behind());
    // Nothing left to send: a second retry posts nothing.
    payer.retry_once().await;
    assert_eq!(rx.got.lock().unwrap().len(), 1);
}

/// A gateway killed after recording jobs its provider never got a voucher
/// for: the restarted payer loads the same channel (no second open), owes
/// the same jobs, and its retry pays them all with one voucher; the
/// account's funds count the channel's unspent escrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_payer_keeps_its_channels_and_pays_what_it_owed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("channels.redb");
    let (key, funding, config) = persistent_parts();
    let rx = receiver(2).await;
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &rx.endpoint);
    let (a, b) = (receipt(&pkey, 3), receipt(&pkey, 5));
    {
        let store = ChannelStore::open(&path).unwrap();
        let first = Payer::persistent(funding.clone(), key.clone(), config.clone(), store).unwrap();
        assert!(first.pay(&prov, &a).await.is_err());
        assert!(first.pay(&prov, &b).await.is_err());
        // Dropped without delivering: what a kill leaves behind.
    }
    let store = ChannelStore::open(&path).unwrap();
    let second = Payer::persistent(funding.clone(), key.clone(), config, store).unwrap();
    let books = second.books().await;
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].jobs, vec![a.receipt.id, b.receipt.id]);
    assert_eq!(books[0].cumulative, 4 + 6);
    assert!(books[0].behind());
    assert_eq!(
        Payer::available(&second).await.unwrap(),
        BALANCE + 1_000 - 10,
        "free balance plus unspent escrow"
    );
    second.retry_once().await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].voucher.cumulative, got[0].voucher.jobs), (10, 2));
    assert_eq!(*rx.jobs.lock().unwrap(), vec![a.receipt.id, b.receipt.id]);
    assert_eq!(
        *funding.opens.lock().unwrap(),
        vec![1_000],
        "one channel, kept"
    );
    // A third start sees the delivery recorded: nothing is behind.
    drop(second);
    let store = ChannelStore::open(&path).unwrap();
    let third = Payer::persistent(funding.clone(), key, PayerConfig::default(), store).unwrap();
    assert!(!third.books().await[0].behind());
}

/// Jobs of another account never reach a payer, so no account pays for another's.
#[tokio::test]
async fn a_payer_refuses_jobs_and_funds_of_other_accounts() {
    let (payer, _, _) = payer(1_000);
    let rx = receiver(0).await;
    let pkey = Keypair::generate();
    let stranger = Keypair::generate().account();
    payer
        .clone()
        .job_done(stranger, provider(&pkey, &rx.endpoint), receipt(&pkey, 1));
    assert!(payer.books().await.is_empty());
    assert!(JobPayer::available(payer, stranger).await.is_err());
}

/// A finished job is journaled as owed before `job_done` returns (that is,
/// before the client is answered); a gateway that dies before the job
/// reaches its book pays for it after the restart, and a job found both in
/// a book and in the journal is paid once.
#[tokio::test]
async fn a_job_journaled_as_owed_is_paid_exactly_once_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("channels.redb");
    let (key, funding, config) = persistent_parts();
    let rx = receiver(0).await;
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &rx.endpoint);
    let (paid, lost, twice) = (receipt(&pkey, 3), receipt(&pkey, 5), receipt(&pkey, 7));
    let store = ChannelStore::open(&path).unwrap();
    // The first run, on a runtime of its own that dies with it: the payment
    // `job_done` spawned never runs, as when the process is killed.
    let first = {
        let (funding, key, config, store) =
            (funding.clone(), key.clone(), config.clone(), store.clone());
        let (prov, paid, lost) = (prov.clone(), paid.clone(), lost.clone());
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let payer = Payer::persistent(funding, key.clone(), config, store.clone()).unwrap();
                payer.pay(&prov, &paid).await.unwrap();
                payer.clone().job_done(key.account(), prov, lost.clone());
                // Not yet in any book, but already on disk.
                let owed = store.owed(&key.account()).unwrap();
                assert_eq!(owed.len(), 1);
                assert_eq!(owed[0].receipt, lost);
            });
        }
    };
    tokio::task::spawn_blocking(first).await.unwrap();
    // What a kill between the journal and the book leaves behind, plus a
    // journal row for a job its book already holds.
    let twice_owed = |r: &SignedReceipt| Owed {
        provider: pkey.account(),
        endpoint: rx.endpoint.clone(),
        receipt: r.clone(),
    };
    store.owe(&key.account(), &twice_owed(&paid)).unwrap();
    store.owe(&key.account(), &twice_owed(&twice)).unwrap();
    let restarted = Payer::persistent(funding.clone(), key.clone(), config, store.clone()).unwrap();
    assert!(
        store.owed(&key.account()).unwrap().is_empty(),
        "the journal is drained"
    );
    let books = restarted.books().await;
    assert_eq!(books.len(), 1);
    let mut jobs = books[0].jobs.clone();
    jobs.sort();
    let mut expected = vec![paid.receipt.id, lost.receipt.id, twice.receipt.id];
    expected.sort();
    assert_eq!(jobs, expected, "each job once");
    assert_eq!(books[0].cumulative, 4 + 6 + 8);
    restarted.retry_once().await;
    let got = rx.got.lock().unwrap().clone();
    let last = got.last().unwrap();
    assert_eq!((last.voucher.cumulative, last.voucher.jobs), (18, 3));
    assert_eq!(
        *funding.opens.lock().unwrap(),
        vec![1_000],
        "one channel, kept"
    );
}

/// Jobs finishing while a voucher is on its way are recorded together and
/// paid by one next voucher, not one voucher each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_finishing_during_a_delivery_share_the_next_voucher() {
    let (payer, _, _) = payer(1_000);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let got: Arc<Mutex<Vec<SignedVoucher>>> = Arc::default();
    let (sink, held, seen) = (got.clone(), gate.clone(), arrived.clone());
    let app = Router::new().route(
        "/v1/vouchers",
        post(move |Json(d): Json<VoucherDelivery>| {
            let (sink, held, seen) = (sink.clone(), held.clone(), seen.clone());
            async move {
                // Each delivery waits for a permit: the first one is held open.
                seen.fetch_add(1, Ordering::SeqCst);
                held.acquire().await.unwrap().forget();
                sink.lock().unwrap().push(d.voucher);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &endpoint);
    let first = receipt(&pkey, 1);
    let run = {
        let (payer, prov) = (payer.clone(), prov.clone());
        tokio::spawn(async move { payer.pay(&prov, &first).await })
    };
    // Wait until the first voucher is waiting at the provider.
    while arrived.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let rest: Vec<SignedReceipt> = (2..12).map(|i| receipt(&pkey, i)).collect();
    let later: Vec<_> = rest
        .iter()
        .cloned()
        .map(|r| {
            let (payer, prov) = (payer.clone(), prov.clone());
            tokio::spawn(async move { payer.pay(&prov, &r).await })
        })
        .collect();
    // Let everything through once all ten are queued behind the first.
    while payer.lock_pending().values().map(Vec::len).sum::<usize>() < 10 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    assert!(run.await.unwrap().unwrap().is_some());
    let mut sent = 0;
    for t in later {
        sent += usize::from(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(sent, 1, "one voucher for the ten queued jobs");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].voucher.jobs, 11);
    let total: Amount = std::iter::once(2)
        .chain(rest.iter().map(|r| r.receipt.cost))
        .sum();
    assert_eq!(got[1].voucher.cumulative, total);
}

/// Jobs that finish within the voucher delay of each other are paid by one voucher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_within_the_voucher_delay_share_one_voucher() {
    let (payer, _, client) = payer(1_000);
    let rx = receiver(0).await;
    let pkey = Keypair::generate();
    let prov = provider(&pkey, &rx.endpoint);
    let receipts: Vec<SignedReceipt> = (0..5).map(|i| receipt(&pkey, i)).collect();
    for r in &receipts {
        payer
            .clone()
            .job_done(client.account(), prov.clone(), r.clone());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rx.got.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no voucher came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].voucher.jobs, 5);
    let total: Amount = receipts.iter().map(|r| r.receipt.cost).sum();
    assert_eq!(got[0].voucher.cumulative, total);
}
