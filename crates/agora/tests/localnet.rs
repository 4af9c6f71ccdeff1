//! `agora localnet`: four validator processes on loopback run the BFT chain.
//! A transaction sent to one validator's RPC is finalized everywhere; blocks
//! carry finalization certificates and randomness; a validator killed with
//! SIGKILL does not stop finalization, and its `cmd` from nodes.json brings it
//! back to the same chain, also when its data was wiped (a new node syncing
//! from peers); a light client verifies certificates and state proofs.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_consensus::{FinalityVerifier, LightError};
use agora_ledger::Account;
use agora_types::{AccountId, Keypair, TxKind};
use serde_json::Value;

use common::Agora;

const WAIT: Duration = Duration::from_secs(120);

/// A base port with 8 free ports above it.
fn free_base_port() -> u16 {
    (20_000u16..60_000)
        .step_by(97)
        .find(|&base| (0..8).all(|k| TcpListener::bind(("127.0.0.1", base + k)).is_ok()))
        .expect("8 free consecutive ports")
}

fn nodes(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("nodes.json")).expect("nodes.json written");
    serde_json::from_str::<Vec<Value>>(&text).expect("nodes.json is a JSON list")
}

/// Poll `check` until it holds or `WAIT` passes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
    }
}

async fn height(rpc: &ChainClient) -> u64 {
    rpc.head().await.map_or(0, |h| h.height)
}

/// Kills every validator process on drop, so a failing test leaves none behind.
struct Cleanup {
    pids: Vec<u32>,
    restarted: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in &self.pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Run a validator's restart command, appending to its log.
fn restart(cmd: &str, log: &str) -> Child {
    let log = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    Command::new("sh")
        .args(["-c", &format!("exec {cmd}")])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Validator `i` reaches the others' height and agrees on the block at `check`.
async fn catch_up(rpcs: &[ChainClient], i: usize, check: u64, balance: u64) {
    let target = height(&rpcs[0]).await;
    eventually("the restarted validator catches up", || async {
        height(&rpcs[i]).await >= target
    })
    .await;
    let theirs = rpcs[i].finality(check).await.unwrap();
    let ours = rpcs[0].finality(check).await.unwrap();
    assert_eq!(theirs.block_id, ours.block_id);
    assert_eq!(theirs.state_root, ours.state_root);
    let to = AccountId([7; 32]);
    assert_eq!(rpcs[i].account(&to).await.unwrap().balance, balance);
}

/// A light client holding only the validator set's identity checks a block's
/// certificate, its randomness and an account proof from an untrusted RPC node.
async fn check_light_client(dir: &Path, rpc: &ChainClient, id: &AccountId) {
    let identity = std::fs::read_to_string(dir.join("identity.hex")).unwrap();
    let verifier = FinalityVerifier::new(&hex::decode(identity.trim()).unwrap()).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let (proof, finality, block) = loop {
        let proof = rpc.account_proof(id).await.unwrap();
        let finality = rpc.finality(proof.height).await.unwrap();
        let block = rpc.block(proof.height).await.unwrap();
        if finality.certificate.is_some() {
            break (proof, finality, block);
        }
        assert!(tokio::time::Instant::now() < deadline, "no certified head");
        // Poll again once the next block is likely finalized.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cert = hex::decode(finality.certificate.unwrap()).unwrap();
    let header = &block.header;
    let randomness = verifier.verify(&cert, header.id()).unwrap();
    assert_eq!(Some(randomness), finality.randomness.map(|r| r.0));
    let account = Account {
        balance: proof.balance,
        nonce: proof.nonce,
    };
    verifier
        .verify_account(&cert, header, id, &account, &proof.proof)
        .unwrap();

    // Lies are caught: a forged balance, a certificate for another block,
    // a tampered certificate, another validator set.
    let forged = Account {
        balance: proof.balance + 1,
        ..account
    };
    assert_eq!(
        verifier.verify_account(&cert, header, id, &forged, &proof.proof),
        Err(LightError::BadProof)
    );
    let parent = rpc.block(proof.height - 1).await.unwrap();
    assert!(matches!(
        verifier.verify(&cert, parent.header.id()),
        Err(LightError::OtherBlock { .. })
    ));
    let mut tampered = cert.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(verifier.verify(&tampered, header.id()).is_err());
    let stranger = agora_consensus::devnet_identity(12345, 4).unwrap();
    let stranger = FinalityVerifier::new(&stranger).unwrap();
    assert_eq!(
        stranger.verify(&cert, header.id()),
        Err(LightError::BadSignature)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalize_survive_a_crash_and_catch_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = free_base_port().to_string();
    let mut net = Agora::start(&[
        "localnet",
        "--validators",
        "4",
        "--dir",
        dir.to_str().unwrap(),
        "--base-port",
        &base,
        "--no-serve",
    ]);
    let list = nodes(dir);
    assert_eq!(list.len(), 4, "{list:?}");
    let pids: Vec<u32> = list
        .iter()
        .map(|n| n["pid"].as_u64().unwrap() as u32)
        .collect();
    let rpcs: Vec<ChainClient> = list
        .iter()
        .map(|n| ChainClient::new(n["rpc"].as_str().unwrap()))
        .collect();
    let mut cleanup = Cleanup {
        pids: pids.clone(),
        restarted: None,
    };

    // A transfer submitted to validator 2 is finalized and visible on validator 0.
    let faucet: Keypair = std::fs::read_to_string(dir.join("faucet.key"))
        .unwrap()
        .parse()
        .unwrap();
    let to = AccountId([7; 32]);
    let kind = TxKind::Transfer { to, amount: 4242 };
    let at = rpcs[2].send_and_wait(&faucet, kind, WAIT).await.unwrap();
    eventually("validator 0 sees the transfer", || async {
        rpcs[0].account(&to).await.is_ok_and(|a| a.balance == 4242)
    })
    .await;

    // Every validator stores the same block there, with a certificate and randomness.
    eventually("all validators reach the transfer's block", || async {
        let mut all = true;
        for rpc in &rpcs {
            all &= height(rpc).await >= at;
        }
        all
    })
    .await;
    let reference = rpcs[0].finality(at).await.unwrap();
    for rpc in &rpcs[1..] {
        let f = rpc.finality(at).await.unwrap();
        assert_eq!(
            f.block_id, reference.block_id,
            "validators disagree at {at}"
        );
        assert_eq!(f.state_root, reference.state_root);
    }
    let later = rpcs[0].finality(at + 1).await;
    let certified = [reference.clone()]
        .into_iter()
        .chain(later)
        .any(|f| f.certificate.is_some() && f.randomness.is_some());
    assert!(certified, "no certificate/randomness stored near {at}");
    check_light_client(dir, &rpcs[1], &to).await;

    // SIGKILL validator 3: the other three keep finalizing.
    let status = Command::new("kill")
        .args(["-9", &pids[3].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let before = height(&rpcs[0]).await;
    eventually("finalization continues without validator 3", || async {
        height(&rpcs[0]).await >= before + 5 && height(&rpcs[1]).await >= before + 5
    })
    .await;
    let funded = rpcs[0].send_and_wait(&faucet, TxKind::Transfer { to, amount: 58 }, WAIT);
    let while_down = funded.await.unwrap();

    // Its restart command from nodes.json brings it back to the same chain.
    let cmd = list[3]["cmd"].as_str().unwrap().to_string();
    let log = list[3]["log"].as_str().unwrap().to_string();
    cleanup.restarted = Some(restart(&cmd, &log));
    catch_up(&rpcs, 3, while_down, 4242 + 58).await;

    // Wiped clean (a new node with validator 3's keys), it syncs from its peers.
    if let Some(mut old) = cleanup.restarted.take() {
        old.kill().unwrap();
        old.wait().unwrap();
    }
    let data = Path::new(&log).parent().unwrap();
    std::fs::remove_dir_all(data.join("chain")).unwrap();
    std::fs::remove_dir_all(data.join("consensus")).unwrap();
    cleanup.restarted = Some(restart(&cmd, &log));
    catch_up(&rpcs, 3, while_down, 4242 + 58).await;

    // SIGTERM stops the localnet and the validators it started.
    let _ = Command::new("kill")
        .args(["-TERM", &net.child.id().to_string()])
        .status();
    let exit = net.child.wait().unwrap();
    assert!(exit.success(), "localnet exited with {exit}");
    for pid in &pids[..3] {
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "validator {pid} outlived the localnet");
    }
    cleanup.pids.clear();
}

/// Fund `key` from the faucet, bond it as a validator and announce the
/// consensus key `consensus` (with its proof of possession) at `p2p`.
async fn stake_and_announce(
    rpc: &ChainClient,
    faucet: &Keypair,
    key: &Keypair,
    consensus: &Keypair,
    p2p: &str,
) {
    let to = key.account();
    rpc.send_and_wait(
        faucet,
        TxKind::Transfer {
            to,
            amount: 2_000_000,
        },
        WAIT,
    )
    .await
    .unwrap();
    let bond = TxKind::BondValidator {
        amount: 1_000_000,
        take_ppm: 0,
    };
    rpc.send_and_wait(key, bond, WAIT).await.unwrap();
    let chain_id = rpc.head().await.unwrap().chain_id;
    let message = agora_types::possession_message(&chain_id, &key.account());
    // Attack: announcing a key without its secret (signed by another key).
    let stolen = TxKind::AnnounceValidator {
        consensus_key: consensus.account(),
        p2p_addr: p2p.to_string(),
        possession: Keypair::generate().sign(&message),
    };
    let refused = rpc.send_and_wait(key, stolen, WAIT).await.unwrap_err();
    let why = refused.to_string();
    assert!(
        why.contains("bad_possession") || why.contains("possession proof"),
        "{why}"
    );
    let announce = TxKind::AnnounceValidator {
        consensus_key: consensus.account(),
        p2p_addr: p2p.to_string(),
        possession: consensus.sign(&message),
    };
    rpc.send_and_wait(key, announce, WAIT).await.unwrap();
}

/// A validator process outside the genesis set follows the chain, bonds and
/// announces itself, is elected by stake, receives a key share in a reshare
/// and leads blocks: the validator set changed at epoch boundaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_elected_by_stake_joins_consensus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = free_base_port();
    let epoch_blocks = 20u64;
    let mut net = Agora::start(&[
        "localnet",
        "--validators",
        "4",
        "--dir",
        dir.to_str().unwrap(),
        "--base-port",
        &base.to_string(),
        "--no-serve",
        "--epoch-blocks",
        &epoch_blocks.to_string(),
    ]);
    let list = nodes(dir);
    let cleanup = Cleanup {
        pids: list
            .iter()
            .map(|n| n["pid"].as_u64().unwrap() as u32)
            .collect(),
        restarted: None,
    };
    let rpc = ChainClient::new(list[0]["rpc"].as_str().unwrap());
    let faucet: Keypair = std::fs::read_to_string(dir.join("faucet.key"))
        .unwrap()
        .parse()
        .unwrap();

    // The joiner: its own key (consensus and stake), its own ports.
    let join_dir = dir.join("joiner");
    std::fs::create_dir_all(&join_dir).unwrap();
    let join_key = Keypair::generate();
    std::fs::write(join_dir.join("join.key"), hex::encode(join_key.seed())).unwrap();
    let join_p2p = format!("127.0.0.1:{}", base + 8);
    let join_rpc = format!("127.0.0.1:{}", base + 9);
    // The genesis validators as the genesis names them: identity key @ address.
    let peers: Vec<String> = list
        .iter()
        .map(|n| {
            format!(
                "{}@{}",
                n["consensus_key"].as_str().unwrap(),
                n["p2p"].as_str().unwrap()
            )
        })
        .collect();
    let mut joiner = Agora::start(&[
        "node",
        "--data-dir",
        join_dir.to_str().unwrap(),
        "--rpc",
        &join_rpc,
        "--genesis",
        dir.join("genesis.toml").to_str().unwrap(),
        "--genesis-epoch",
        dir.join("genesis-epoch.hex").to_str().unwrap(),
        "--validators",
        &peers.join(","),
        "--join-key",
        join_dir.join("join.key").to_str().unwrap(),
        "--p2p-listen",
        &join_p2p,
    ]);
    assert_eq!(
        joiner.value("consensus key"),
        join_key.account().to_string(),
        "the joiner signs consensus with its --join-key"
    );

    // The four genesis validators and the joiner stake and announce.
    for node in &list {
        let key = Keypair::generate();
        let i = node["index"].as_u64().unwrap();
        let file = dir.join(format!("validator-{i}")).join("consensus.key");
        let seed = hex::decode(std::fs::read_to_string(file).unwrap().trim()).unwrap();
        let consensus = Keypair::from_seed(seed.try_into().unwrap());
        let named: AccountId = node["consensus_key"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            consensus.account(),
            named,
            "the key file is the node's consensus key"
        );
        stake_and_announce(
            &rpc,
            &faucet,
            &key,
            &consensus,
            node["p2p"].as_str().unwrap(),
        )
        .await;
    }
    stake_and_announce(&rpc, &faucet, &join_key, &join_key, &join_p2p).await;
    let announced = height(&rpc).await;

    // Elected at the next epoch start E, the joiner receives a share in
    // epoch E/20 + 2's reshare and leads blocks from the epoch after.
    let elected = announced.div_ceil(epoch_blocks) * epoch_blocks;
    let signing_from = elected + 3 * epoch_blocks;
    let join_client = ChainClient::new(&format!("http://{join_rpc}"));
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    let mut checked = 0;
    let led = loop {
        let top = height(&rpc).await;
        let mut found = None;
        while checked < top && found.is_none() {
            checked += 1;
            let block = rpc.block(checked).await.unwrap();
            if block.header.proposer == join_key.account() {
                found = Some(checked);
            }
        }
        if let Some(h) = found {
            break h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the joiner led no block up to height {top}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eventually("the joiner stores the block it led", || async {
        height(&join_client).await >= led
    })
    .await;
    assert!(
        led >= signing_from,
        "led {led} before it could hold a share ({signing_from})"
    );
    // The joiner's own store agrees with the genesis validators'.
    let theirs = rpc.finality(led).await.unwrap();
    let mine = join_client.finality(led).await.unwrap();
    assert_eq!(mine.block_id, theirs.block_id);
    assert_eq!(mine.state_root, theirs.state_root);
    joiner.kill();
    drop(cleanup);
    net.kill();
}
