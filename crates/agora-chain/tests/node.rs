//! The chain node over its real HTTP RPC and real redb store.

use std::time::Duration;

use agora_chain::{ChainConfig, ChainError, Node};
use agora_chain_client::{ChainClient, ClientError};
use agora_ledger::Genesis;
use agora_testkit::GenesisBuilder;
use agora_types::rpc::{BatchItem, TxStatus};
use agora_types::{Hash32, Keypair, Transaction, TxKind};

/// Each item of a `POST /txs` answer as the id, or the refusal's error code.
fn codes(results: Vec<BatchItem>) -> Vec<Result<Hash32, String>> {
    results
        .into_iter()
        .map(|r| match r {
            BatchItem::Accepted { id } => Ok(id),
            BatchItem::Refused { error } => Err(error.code),
        })
        .collect()
}

/// A genesis funding `keys`, without fees (the node is under test here; the
/// ledger's own tests cover fees).
fn genesis(keys: &[&Keypair]) -> Genesis {
    GenesisBuilder::new("node-test")
        .fund_keys(keys.iter().copied(), 1_000)
        .without_fees()
        .build()
}

async fn serve(node: &Node) -> ChainClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = node.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    ChainClient::new(&url)
}

/// A fresh node in `dir` with default settings, served over HTTP.
async fn serve_new(dir: &std::path::Path, genesis: &Genesis) -> (Node, ChainClient) {
    let node = Node::open(dir, genesis, Keypair::generate(), ChainConfig::default()).unwrap();
    let rpc = serve(&node).await;
    (node, rpc)
}

fn transfer(
    chain: &str,
    from: &Keypair,
    to: &Keypair,
    nonce: u64,
    amount: u64,
) -> agora_types::SignedTransaction {
    Transaction {
        chain_id: chain.into(),
        from: from.account(),
        nonce,
        kind: TxKind::Transfer {
            to: to.account(),
            amount,
        },
    }
    .sign(from)
}

fn rejected_code(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Rejected { status, code, .. }) => (status, code),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn transactions_commit_and_bad_ones_get_precise_errors() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let (node, rpc) = serve_new(dir.path(), &genesis(&[&a, &b])).await;

    let tx = transfer("node-test", &a, &b, 0, 100);
    let id = rpc.submit(&tx).await.unwrap();
    assert_eq!(
        rpc.tx_status(&id, Duration::ZERO).await.unwrap(),
        TxStatus::Pending
    );
    assert_eq!(rpc.account(&a.account()).await.unwrap().next_nonce, 1);
    assert_eq!(
        rejected_code(rpc.submit(&tx).await),
        (409, "duplicate".into())
    );
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &a, &b, 0, 5)).await),
        (400, "bad_nonce".into())
    );
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &b, &a, 0, 5_000)).await),
        (400, "insufficient_balance".into())
    );
    assert_eq!(
        rejected_code(rpc.submit(&transfer("other", &b, &a, 0, 5)).await),
        (400, "wrong_chain".into())
    );
    let mut forged = transfer("node-test", &b, &a, 0, 5);
    forged.tx.kind = TxKind::Transfer {
        to: b.account(),
        amount: 6,
    };
    assert_eq!(
        rejected_code(rpc.submit(&forged).await),
        (400, "bad_signature".into())
    );

    // A waiter blocked on the transaction is woken by the block that commits it.
    let waiter = {
        let rpc = rpc.clone();
        tokio::spawn(async move { rpc.tx_status(&id, Duration::from_secs(20)).await })
    };
    let block = node.produce_block(1).unwrap();
    assert_eq!(block.txs, vec![tx]);
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        TxStatus::Committed { height: 1 }
    );
    assert_eq!(rpc.account(&a.account()).await.unwrap().balance, 900);
    assert_eq!(rpc.account(&b.account()).await.unwrap().balance, 1_100);
    assert_eq!(rpc.block(1).await.unwrap(), block);
    assert_eq!(rejected_code(rpc.block(7).await), (404, "not_found".into()));
    assert_eq!(rpc.head().await.unwrap().height, 1);
    // Replaying the committed transaction is caught by the index; a new one with an old nonce by the ledger.
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &a, &b, 0, 100)).await),
        (409, "duplicate".into())
    );
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &a, &b, 0, 99)).await),
        (400, "bad_nonce".into())
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let a = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let (_node, rpc) = serve_new(dir.path(), &genesis(&[&a])).await;
    let http = reqwest::Client::new();
    let post = |body: String| {
        http.post(format!("{}/tx", rpc.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post(r#"{"tx":"zz"}"#.into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(r#"{"tx":"00ff"}"#.into()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("malformed"));
    let r = post("{not json".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(format!(r#"{{"tx":"{}"}}"#, "0".repeat(2 << 20)))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn full_mempool_pushes_back() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let config = ChainConfig {
        mempool_capacity: 2,
        ..ChainConfig::default()
    };
    let node = Node::open(dir.path(), &genesis(&[&a, &b]), Keypair::generate(), config).unwrap();
    let rpc = serve(&node).await;
    rpc.submit(&transfer("node-test", &a, &b, 0, 1))
        .await
        .unwrap();
    rpc.submit(&transfer("node-test", &a, &b, 1, 1))
        .await
        .unwrap();
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &a, &b, 2, 1)).await),
        (503, "mempool_full".into())
    );
    node.produce_block(1).unwrap();
    rpc.submit(&transfer("node-test", &a, &b, 2, 1))
        .await
        .unwrap();
}

/// Attack (issue 13, #12): one account floods the mempool. It is held to
/// `MAX_PENDING_PER_SENDER` waiting transactions (429 `sender_limit`), and
/// another account's transaction is still admitted behind the flood.
#[tokio::test]
async fn one_sender_cannot_fill_the_mempool() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let mut g = genesis(&[&a, &b]);
    g.accounts[0].balance = 1_000_000;
    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    let limit = agora_chain::MAX_PENDING_PER_SENDER as u64;
    for nonce in 0..limit {
        node.submit(transfer("node-test", &a, &b, nonce, 1))
            .unwrap();
    }
    let rpc = serve(&node).await;
    assert_eq!(
        rejected_code(rpc.submit(&transfer("node-test", &a, &b, limit, 1)).await),
        (429, "sender_limit".into())
    );
    rpc.submit(&transfer("node-test", &b, &a, 0, 1))
        .await
        .unwrap();
    // After a block takes some of them, the sender may queue again.
    node.produce_block(1).unwrap();
    rpc.submit(&transfer("node-test", &a, &b, limit, 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn batches_apply_in_order_with_an_outcome_per_transaction() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let (node, rpc) = serve_new(dir.path(), &genesis(&[&a, &b])).await;
    let batch = vec![
        transfer("node-test", &a, &b, 0, 10),
        transfer("node-test", &a, &b, 1, 20),
        // Refused (nonce 1 is taken by the line above) without stopping the rest.
        transfer("node-test", &a, &b, 1, 30),
        transfer("node-test", &a, &b, 2, 40),
        transfer("node-test", &b, &a, 0, 5_000),
    ];
    let outcome = codes(rpc.submit_batch(&batch).await.unwrap());
    assert_eq!(
        outcome,
        vec![
            Ok(batch[0].id()),
            Ok(batch[1].id()),
            Err("bad_nonce".into()),
            Ok(batch[3].id()),
            Err("insufficient_balance".into()),
        ]
    );
    let block = node.produce_block(1).unwrap();
    assert_eq!(
        block.txs,
        vec![batch[0].clone(), batch[1].clone(), batch[3].clone()]
    );
    assert_eq!(rpc.account(&a.account()).await.unwrap().balance, 930);

    // Over the batch limit: refused as a whole.
    let too_many = vec![transfer("node-test", &a, &b, 3, 1); 1_001];
    assert_eq!(
        rejected_code(rpc.submit_batch(&too_many).await),
        (400, "too_many".into())
    );
}

#[test]
fn state_survives_reopen_and_other_genesis_is_refused() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(&[&a, &b]);
    let root = {
        let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
        node.submit(transfer("node-test", &a, &b, 0, 10)).unwrap();
        node.produce_block(5).unwrap();
        node.produce_block(6).unwrap();
        node.state().root()
    };
    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    assert_eq!(node.state().height, 2);
    assert_eq!(node.state().root(), root);
    assert_eq!(node.state().account(&b.account()).balance, 1_010);
    assert_eq!(node.block(1).unwrap().unwrap().txs.len(), 1);
    drop(node);
    let mut other = g.clone();
    other.chain_id = "another".into();
    assert!(matches!(
        Node::open(
            dir.path(),
            &other,
            Keypair::generate(),
            ChainConfig::default()
        ),
        Err(ChainError::GenesisMismatch { .. })
    ));
}

/// Blocks finalized elsewhere (by consensus) are stored in order with their
/// certificate and randomness; a gap or a replay is refused; all of it survives a reopen.
#[tokio::test]
async fn finalized_blocks_commit_in_order_with_their_finality() {
    use agora_chain::Finality;
    use agora_ledger::{build_block, BlockCandidate};

    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(&[&a, &b]);
    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    let pending = transfer("node-test", &a, &b, 0, 10);
    node.submit(pending.clone()).unwrap();
    assert_eq!(node.mempool_len(), 1);

    // Another validator built blocks 1 and 2; block 1 carries our pending transaction.
    let b1 = build_block(
        &node.state(),
        BlockCandidate {
            proposer: a.account(),
            timestamp_ms: 10,
            txs: vec![pending],
            randomness: agora_types::Hash32::ZERO,
        },
    );
    let b2 = build_block(
        &b1.state,
        BlockCandidate {
            proposer: b.account(),
            timestamp_ms: 20,
            txs: vec![],
            randomness: agora_types::Hash32::ZERO,
        },
    );
    let finality = Finality {
        randomness: Some([9; 32]),
        certificate: Some(vec![1, 2, 3]),
    };
    assert!(matches!(
        node.commit_finalized(&b2.block, b2.state.clone(), &finality),
        Err(ChainError::OutOfOrder {
            committed: 0,
            got: 2
        })
    ));
    node.commit_finalized(&b1.block, b1.state.clone(), &finality)
        .unwrap();
    assert!(matches!(
        node.commit_finalized(&b1.block, b1.state.clone(), &finality),
        Err(ChainError::OutOfOrder {
            committed: 1,
            got: 1
        })
    ));
    assert_eq!(
        node.mempool_len(),
        0,
        "the included transaction left the mempool"
    );
    node.commit_finalized(&b2.block, b2.state.clone(), &Finality::default())
        .unwrap();

    drop(node);

    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    assert_eq!(node.state().height, 2);
    assert_eq!(node.finality(1).unwrap(), Some(finality));
    assert_eq!(node.state().account(&b.account()).balance, 1_010);

    let rpc = serve(&node).await;
    let f1 = rpc.finality(1).await.unwrap();
    assert_eq!(f1.block_id, b1.block.header.id());
    assert_eq!(f1.randomness.map(|r| r.0), Some([9; 32]));
    assert_eq!(f1.certificate.as_deref(), Some("010203"));
    let f2 = rpc.finality(2).await.unwrap();
    assert_eq!((f2.randomness, f2.certificate), (None, None));
    assert_eq!(rejected_code(rpc.finality(3).await).0, 404);
}

/// Staking, payment channels, royalties and issuance through the RPC: a
/// bonded validator is listed, an opened channel is readable (with its
/// model), a settlement shows up as the provider's and the model owner's
/// earnings, `/supply` accounts for every base unit, an unknown channel is a 404.
#[tokio::test]
async fn validators_and_channels_are_served() {
    let (a, b, owner) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut g = genesis(&[&a, &b, &owner]);
    g.params.min_validator_bond = 1;
    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    let sign = |key: &Keypair, nonce: u64, kind: TxKind| {
        Transaction {
            chain_id: "node-test".into(),
            from: key.account(),
            nonce,
            kind,
        }
        .sign(key)
    };
    let model = agora_types::ModelEntry {
        id: Hash32::digest(b"royalty model"),
        name: "royalty-model".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner: owner.account(),
        royalty_ppm: 100_000,
        tokenizer_hash: Default::default(),
    };
    node.submit(sign(
        &owner,
        0,
        TxKind::RegisterModel {
            model: model.clone(),
        },
    ))
    .unwrap();
    let bond = TxKind::BondValidator {
        amount: 300,
        take_ppm: 90_000,
    };
    node.submit(sign(&a, 0, bond)).unwrap();
    let serve_it = TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:1".into(),
        models: vec![model.id],
        price: agora_types::Price::default(),
        stake: 1,
        replayable: true,
    };
    node.submit(sign(&a, 1, serve_it)).unwrap();
    let open = TxKind::OpenChannel {
        provider: a.account(),
        model: model.id,
        deposit: 200,
    };
    node.submit(sign(&b, 0, open)).unwrap();
    node.produce_block(1).unwrap();

    let rpc = serve(&node).await;
    let validators = rpc.validators().await.unwrap();
    assert_eq!(validators.len(), 1);
    assert_eq!(validators[0].id, a.account());
    assert_eq!(
        (validators[0].self_stake, validators[0].take_ppm),
        (300, 90_000)
    );
    let id = agora_types::channel_id("node-test", &b.account(), 0);
    let channel = rpc.channel(&id).await.unwrap();
    assert_eq!(
        (channel.client, channel.provider, channel.model),
        (b.account(), a.account(), model.id)
    );
    assert_eq!(
        (channel.deposit, channel.paid, channel.closable_at),
        (200, 0, None)
    );
    assert_eq!(
        rejected_code(rpc.channel(&Hash32::digest(b"none")).await).0,
        404
    );

    let voucher = agora_types::Voucher {
        channel: id,
        cumulative: 155,
        receipts_root: Hash32::digest(b"receipts"),
        jobs: 3,
    }
    .sign(&b);
    node.submit(sign(&a, 2, TxKind::SettleChannel { voucher }))
        .unwrap();
    node.produce_block(2).unwrap();
    // 155 at 10%: 15 to the owner (rounded down), 140 to the provider.
    let provider = rpc.account(&a.account()).await.unwrap();
    assert_eq!(provider.balance, 1_000 - 300 - 1 + 140);
    assert_eq!(
        (provider.earned.channels, provider.earned.royalties),
        (140, 0)
    );
    let royalties = rpc.account(&owner.account()).await.unwrap();
    assert_eq!(royalties.balance, 1_015);
    assert_eq!(royalties.earned.royalties, 15);
    let supply = rpc.supply().await.unwrap();
    assert_eq!(supply.height, 2);
    assert!(supply.emitted > 0, "emission minted nothing");
    assert_eq!(supply.total_supply + supply.burned, 3_000 + supply.emitted);
    let status = rpc.status().await.unwrap();
    assert_eq!(status.supply, supply);
    assert_eq!(status.provider_accounts.len(), 1);
    assert_eq!(status.provider_accounts[0].id, a.account());
    assert_eq!(status.provider_accounts[0].balance, provider.balance);
    assert_eq!(status.provider_accounts[0].earned, provider.earned);
}

/// Audits through the RPC: a committed receipt batch is paged by height, a
/// failed verdict shows as an open dispute, and the provider's audit record
/// and collateral are served (also in `/status`).
#[tokio::test]
async fn batches_disputes_and_audit_records_are_served() {
    use agora_types::audit::{batch_id, dispute_id};
    use agora_types::{ModelEntry, Price};
    let (provider, auditor, other) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let model = ModelEntry {
        id: Hash32::digest(b"m"),
        name: "m".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner: provider.account(),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    };
    let mut g = genesis(&[&provider, &auditor, &other]);
    g.models.push(model.clone());
    // RPC serving, not the bond rule, is under test here (ledger tests cover it).
    g.params.min_validator_bond = 1;
    g.params.audit.audit_rate_ppm = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), &g, Keypair::generate(), ChainConfig::default()).unwrap();
    let sign = |key: &Keypair, nonce: u64, kind: TxKind| {
        Transaction {
            chain_id: "node-test".into(),
            from: key.account(),
            nonce,
            kind,
        }
        .sign(key)
    };
    let register = TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:1".into(),
        models: vec![model.id],
        price: Price::default(),
        stake: 500,
        replayable: true,
    };
    node.submit(sign(&provider, 0, register)).unwrap();
    for key in [&auditor, &other] {
        let bond = TxKind::BondValidator {
            amount: 100,
            take_ppm: 0,
        };
        node.submit(sign(key, 0, bond)).unwrap();
    }
    node.produce_block(1).unwrap();
    let commit = |nonce: u64| TxKind::CommitReceipts {
        model: model.id,
        root: Hash32::digest(&nonce.to_le_bytes()),
        count: 3,
    };
    node.submit(sign(&provider, 1, commit(1))).unwrap();
    node.produce_block(2).unwrap();
    node.submit(sign(&provider, 2, commit(2))).unwrap();
    node.produce_block(3).unwrap();

    let rpc = serve(&node).await;
    let page = rpc.batches(None).await.unwrap();
    assert!(!page.more);
    let ids: Vec<Hash32> = page.batches.iter().map(|b| b.id).collect();
    let (first, second) = (
        batch_id(&provider.account(), 1),
        batch_id(&provider.account(), 2),
    );
    assert_eq!(ids, vec![first, second]);
    assert_eq!(page.batches[0].height, 2);
    let later = rpc.batches(Some(2)).await.unwrap();
    assert_eq!(later.batches.len(), 1);
    assert_eq!(later.batches[0].id, second);
    assert!(rpc.batches(Some(3)).await.unwrap().batches.is_empty());

    // The first batch's audits were drawn in block 3; the second's are not yet.
    let drawn = page.batches[0].audits.clone();
    assert_eq!(
        drawn.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(page.batches[1].seed.is_none() && page.batches[1].audits.is_empty());
    let key_of = |index: u64| {
        let id = drawn[index as usize].1;
        [&auditor, &other]
            .into_iter()
            .find(|k| k.account() == id)
            .unwrap()
    };
    let (accuser, passer) = (key_of(1), key_of(0));
    let fail = TxKind::SubmitVerdict {
        batch: first,
        index: 1,
        leaf: Hash32::digest(b"leaf"),
        passed: false,
        evidence: Hash32::digest(b"evidence"),
    };
    node.submit(sign(accuser, 1, fail)).unwrap();
    let pass = TxKind::SubmitVerdict {
        batch: first,
        index: 0,
        leaf: Hash32::digest(b"leaf"),
        passed: true,
        evidence: Hash32::ZERO,
    };
    let passer_nonce = if passer.account() == accuser.account() {
        2
    } else {
        1
    };
    node.submit(sign(passer, passer_nonce, pass)).unwrap();
    node.produce_block(4).unwrap();
    let disputes = rpc.disputes().await.unwrap();
    assert_eq!(disputes.len(), 1);
    assert_eq!(disputes[0].id, dispute_id(&first, 1));
    assert!(disputes[0].committee.is_empty(), "drawn in the next block");
    node.produce_block(5).unwrap();
    let member = if accuser.account() == auditor.account() {
        &other
    } else {
        &auditor
    };
    let disputes = rpc.disputes().await.unwrap();
    assert_eq!(disputes[0].committee, vec![member.account()]);

    let record = rpc.audits(&provider.account()).await.unwrap();
    assert!(record.registered);
    assert_eq!(record.stake, 500);
    assert_eq!(record.audits.audits_passed, 1);
    assert!(!record.audits.slashed);
    let status = rpc.status().await.unwrap();
    assert_eq!(status.audits, vec![record]);
    let stranger = rpc.audits(&Keypair::generate().account()).await.unwrap();
    assert!(!stranger.registered && stranger.audits == Default::default());
    let bad = reqwest::get(format!("{}/audits/not-a-key", rpc.url()))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // The committee of one confirms: the provider is slashed and deregistered.
    let vote = TxKind::VoteDispute {
        dispute: dispute_id(&first, 1),
        agree: true,
    };
    let member_nonce = node.state().account(&member.account()).nonce;
    node.submit(sign(member, member_nonce, vote)).unwrap();
    node.produce_block(6).unwrap();
    let record = rpc.audits(&provider.account()).await.unwrap();
    assert!(!record.registered && record.audits.slashed);
    assert_eq!((record.stake, record.audits.slashed_amount), (0, 500));
    assert!(rpc.disputes().await.unwrap().is_empty());

    // The verdicts in finalized blocks are counted in the metrics.
    let metrics = reqwest::get(format!("{}/metrics", rpc.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"agora_chain_audit_verdicts_total{verdict="passed"} 1"#,
        r#"agora_chain_audit_verdicts_total{verdict="failed"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn remembered_signatures_never_vouch_for_forged_variants() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let (node, rpc) = serve_new(dir.path(), &genesis(&[&a, &b])).await;
    let good = transfer("node-test", &a, &b, 0, 10);
    assert!(node.signature_ok(&good));
    // Same transaction, one signature bit flipped: another id, verified on its own.
    let mut forged = good.clone();
    forged.signature.0[10] ^= 1;
    for _ in 0..2 {
        assert!(
            !node.signature_ok(&forged),
            "a forgery is never remembered as valid"
        );
    }
    // The admission path refuses the forgery as a bad signature (not as a
    // duplicate of the remembered transaction) and still admits the original.
    let outcomes: Vec<_> = node
        .admit_batch(vec![forged.clone(), good.clone()])
        .into_iter()
        .map(|r| r.map_err(|e| e.code()))
        .collect();
    assert_eq!(outcomes, vec![Err("bad_signature"), Ok(good.id())]);
    // Through the RPC: a wrong-chain transaction is refused as such whatever
    // its signature, and each refusal keeps its place in the batch.
    let mut other_chain = transfer("elsewhere", &b, &a, 0, 1);
    other_chain.signature.0[0] ^= 1;
    let next = transfer("node-test", &b, &a, 0, 1);
    let results = rpc
        .submit_batch(&[other_chain, forged.clone(), next.clone()])
        .await
        .unwrap();
    assert_eq!(
        codes(results),
        vec![
            Err("wrong_chain".into()),
            Err("bad_signature".into()),
            Ok(next.id())
        ]
    );
    let block = node.produce_block(1).unwrap();
    assert_eq!(block.txs, vec![good, next]);
}

/// GET `path` through the node's router: its status and JSON body.
async fn explorer(node: &Node, path: &str) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = node.router().oneshot(request).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The explorer's JSON at `path`, which must answer 200.
async fn explore(node: &Node, path: &str) -> serde_json::Value {
    let (status, body) = explorer(node, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn the_explorer_pages_blocks_and_supply_and_replays_its_history_after_a_restart() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis(&[&a, &b]);
    let open = |config| Node::open(dir.path(), &genesis, Keypair::generate(), config);
    let node = open(ChainConfig::default()).unwrap();
    let id = node.submit(transfer("node-test", &a, &b, 0, 100)).unwrap();
    node.produce_block(1).unwrap();
    node.produce_block(2).unwrap();
    let page = explore(&node, "/explorer/blocks?limit=5").await;
    assert_eq!(page["head"], 2);
    let heights: Vec<u64> = page["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, vec![2, 1]);
    assert_eq!(page["blocks"][1]["tx_count"], 1);
    assert_eq!(page["blocks"][1]["txs"][0]["id"], id.to_hex());
    assert_eq!(page["blocks"][1]["txs"][0]["kind"], "transfer");
    let below = explore(&node, "/explorer/blocks?before=2").await;
    assert_eq!(below["blocks"].as_array().unwrap().len(), 1);
    let supply = explore(&node, "/explorer/supply?since=1").await;
    assert_eq!(supply.as_array().unwrap().len(), 1);
    assert_eq!(supply[0]["height"], 2);
    let total = node.state().total_supply();
    assert_eq!(
        supply[0]["total_supply"].as_u64().map(u128::from),
        Some(total)
    );
    let accounts = explore(&node, "/explorer/accounts?sort=balance&limit=1").await;
    assert_eq!(accounts["total"], 2);
    assert_eq!(accounts["accounts"][0]["id"], b.account().to_string());
    assert_eq!(accounts["accounts"][0]["balance"], 1_100);
    let history_before = (
        explore(&node, "/explorer/supply").await,
        explore(&node, "/explorer/blocks").await["blocks"].clone(),
    );
    drop(node);

    // Reopened: the history is replayed from genesis, exactly as it was.
    let node = open(ChainConfig::default()).unwrap();
    let supply = explore(&node, "/explorer/supply").await;
    let blocks = explore(&node, "/explorer/blocks").await["blocks"].clone();
    assert_eq!((supply, blocks), history_before);
    node.produce_block(3).unwrap();
    let page = explore(&node, "/explorer/blocks").await;
    assert_eq!(page["blocks"][0]["height"], 3);
    assert_eq!(
        explore(&node, "/explorer/supply")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    drop(node);

    // Past the replay limit: the stored blocks' summaries only; supply
    // starts afresh with the next block.
    let config = ChainConfig {
        explorer_replay_blocks: 2,
        ..ChainConfig::default()
    };
    let node = open(config).unwrap();
    let page = explore(&node, "/explorer/blocks").await;
    assert_eq!(page["blocks"].as_array().unwrap().len(), 3);
    assert_eq!(page["blocks"][2]["txs"][0]["kind"], "transfer");
    assert!(explore(&node, "/explorer/supply")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    node.produce_block(4).unwrap();
    assert_eq!(
        explore(&node, "/explorer/supply")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Malformed input gets the RPC's error shape.
    let (status, body) = explorer(&node, "/explorer/blocks?limit=lots").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed"))
    );
    let (status, _) = explorer(&node, "/explorer/earnings/nothex").await;
    assert_eq!(status, 400);
}
