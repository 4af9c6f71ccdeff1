//! The economics CLI end to end against a real `agora node`: `wallet new`,
//! `transfer`, `balance`, `stake`, `delegate`, `unstake`, `channel
//! open/topup/close/finish`, and `status --json`, asserting on their JSON.
//! A provider settles a voucher in between (through the chain client, as the
//! provider process does) on a model with a royalty, so the balances show
//! the exact provider/owner split.

mod common;

use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_types::{Hash32, Keypair, ModelEntry, Price, TxKind, Voucher};
use serde_json::Value;

/// What the development genesis gives the faucet.
const DEV_BALANCE: u64 = 1_000_000_000_000;

/// Run `agora ARGS --rpc RPC --json`, expect success, parse its JSON.
fn ok_json(rpc: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--rpc", rpc, "--json"]);
    common::run_json(&all)
}

/// What every transaction pays on a devnet genesis (burned).
const FEE: u64 = agora_ledger::DEFAULT_TX_FEE;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_stake_and_channel_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let _node = common::fast_node(&dir.path().join("node"));
    let rpc = _node.value("chain RPC");
    let faucet = path("node/faucet.key");

    // New keys; a key file is never overwritten.
    let (ok, out, _) = common::run(&["wallet", "new", "--key", &path("alice.key"), "--json"]);
    assert!(ok);
    let alice: Value = serde_json::from_str(&out).unwrap();
    let alice = alice["account"].as_str().unwrap().to_string();
    let (ok, _, err) = common::run(&["wallet", "new", "--key", &path("alice.key")]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = common::run(&["wallet", "new", "--key", &path("prov.key"), "--json"]);
    assert!(ok);
    let prov: Value = serde_json::from_str(&out).unwrap();
    let prov = prov["account"].as_str().unwrap().to_string();

    let sent = ok_json(
        &rpc,
        &[
            "wallet", "transfer", "--key", &faucet, "--to", &alice, "--amount", "5000000",
        ],
    );
    assert_eq!(sent["to"], alice.as_str());
    assert_eq!(u(&sent["balance"]), DEV_BALANCE - 5_000_000 - FEE);
    assert_eq!(sent["tx"].as_str().map(str::len), Some(64));
    // The old spelling still works.
    let (ok, out, err) = common::run(&[
        "transfer", "--rpc", &rpc, "--key", &faucet, "--to", &prov, "--amount", "1000",
    ]);
    assert!(ok && out.contains("transferred 1000"), "{out} {err}");
    let bal = ok_json(&rpc, &["wallet", "balance", "--account", &alice]);
    assert_eq!((u(&bal["balance"]), u(&bal["nonce"])), (5_000_000, 0));
    let bal = ok_json(&rpc, &["wallet", "balance", "--key", &path("prov.key")]);
    assert_eq!(u(&bal["balance"]), 1_000);
    // A transfer beyond the balance fails clearly.
    let (ok, _, err) = common::run(&[
        "wallet",
        "transfer",
        "--rpc",
        &rpc,
        "--key",
        &path("prov.key"),
        "--to",
        &alice,
        "--amount",
        "1001",
    ]);
    assert!(!ok && err.contains("insufficient balance"), "{err}");

    // Staking.
    let staked = ok_json(
        &rpc,
        &[
            "stake",
            "--key",
            &path("alice.key"),
            "--amount",
            "1000000",
            "--take-ppm",
            "100000",
        ],
    );
    assert_eq!(staked["validator"]["id"], alice.as_str());
    assert_eq!(u(&staked["validator"]["self_stake"]), 1_000_000);
    assert_eq!(u(&staked["validator"]["take_ppm"]), 100_000);
    assert_eq!(u(&staked["balance"]), 4_000_000 - FEE);
    let delegated = ok_json(
        &rpc,
        &[
            "delegate",
            "--key",
            &faucet,
            "--validator",
            &alice,
            "--amount",
            "300",
        ],
    );
    assert_eq!(u(&delegated["validator"]["delegated"]), 300);
    let unstaked = ok_json(
        &rpc,
        &[
            "unstake",
            "--key",
            &faucet,
            "--validator",
            &alice,
            "--amount",
            "100",
        ],
    );
    assert_eq!(u(&unstaked["validator"]["delegated"]), 200);
    let own = ok_json(
        &rpc,
        &["unstake", "--key", &path("alice.key"), "--amount", "1"],
    );
    assert_eq!(u(&own["validator"]["self_stake"]), 999_999);

    // Committee candidacy: the bonded validator announces its endpoint; a
    // non-validator cannot.
    // The node's key file signs the proof of possession.
    let node = Keypair::from_seed([0x11; 32]);
    std::fs::write(path("node.key"), hex::encode(node.seed())).unwrap();
    let announced = ok_json(
        &rpc,
        &[
            "announce",
            "--key",
            &path("alice.key"),
            "--consensus-key-file",
            &path("node.key"),
            "--p2p",
            "127.0.0.1:27999",
        ],
    );
    assert_eq!(announced["validator"], alice.as_str());
    assert_eq!(announced["consensus_key"], node.account().to_string());
    let (ok, _, err) = common::run(&[
        "announce",
        "--key",
        &path("prov.key"),
        "--consensus-key-file",
        &path("node.key"),
        "--p2p",
        "127.0.0.1:27998",
        "--rpc",
        &rpc,
    ]);
    assert!(!ok && err.contains("not a validator"), "{err}");
    let committee: Value = reqwest::get(format!("{rpc}/committee"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let candidates = committee["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "{committee}");
    assert_eq!(candidates[0]["validator"], alice.as_str());
    assert_eq!(candidates[0]["endpoint"]["p2p_addr"], "127.0.0.1:27999");
    assert_eq!(u(&candidates[0]["stake"]), 999_999 + 200);

    // Alice owns a model with a 10% royalty; the provider serves it.
    let chain = ChainClient::new(&rpc);
    let alice_key: Keypair = std::fs::read_to_string(path("alice.key"))
        .unwrap()
        .parse()
        .unwrap();
    let prov_key: Keypair = std::fs::read_to_string(path("prov.key"))
        .unwrap()
        .parse()
        .unwrap();
    let model = ModelEntry {
        id: Hash32::digest(b"wallet test model"),
        name: "royalty-model".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner: alice_key.account(),
        royalty_ppm: 100_000,
        tokenizer_hash: Default::default(),
    };
    let wait = Duration::from_secs(30);
    chain
        .send_and_wait(
            &alice_key,
            TxKind::RegisterModel {
                model: model.clone(),
            },
            wait,
        )
        .await
        .unwrap();
    let serve = TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:1".into(),
        models: vec![model.id],
        price: Price::default(),
        stake: 1,
        replayable: true,
    };
    chain.send_and_wait(&prov_key, serve, wait).await.unwrap();
    let (ok, _, err) = common::run(&[
        "channel",
        "open",
        "--rpc",
        &rpc,
        "--key",
        &path("alice.key"),
        "--provider",
        &prov,
        "--model",
        "no-such-model",
        "--deposit",
        "1",
    ]);
    assert!(!ok && err.contains("royalty-model"), "{err}");

    let before = u(&ok_json(&rpc, &["wallet", "balance", "--account", &alice])["balance"]);
    let opened = ok_json(
        &rpc,
        &[
            "channel",
            "open",
            "--key",
            &path("alice.key"),
            "--provider",
            &prov,
            "--model",
            "royalty-model",
            "--deposit",
            "10000",
        ],
    );
    assert_eq!(opened["model"], model.id.to_hex().as_str());
    assert_eq!(u(&opened["balance"]), before - 10_000 - FEE);
    let channel = opened["channel"].as_str().unwrap().to_string();
    let topped = ok_json(
        &rpc,
        &[
            "channel",
            "topup",
            "--key",
            &path("alice.key"),
            "--channel",
            &channel,
            "--amount",
            "5000",
        ],
    );
    assert_eq!((u(&topped["deposit"]), u(&topped["paid"])), (15_000, 0));

    // The provider settles 12,345: 1,234 royalty to alice, 11,111 to the provider.
    let voucher = Voucher {
        channel: channel.parse().unwrap(),
        cumulative: 12_345,
        receipts_root: Hash32::digest(b"receipts"),
        jobs: 7,
    }
    .sign(&alice_key);
    chain
        .send_and_wait(&prov_key, TxKind::SettleChannel { voucher }, wait)
        .await
        .unwrap();
    let mine = ok_json(&rpc, &["wallet", "balance", "--key", &path("alice.key")]);
    assert_eq!(u(&mine["balance"]), before - 15_000 + 1_234 - 2 * FEE);
    assert_eq!(u(&mine["earned"]["royalties"]), 1_234);

    // The client starts closing; finishing early fails clearly; the provider closes at once.
    let closing = ok_json(
        &rpc,
        &[
            "channel",
            "close",
            "--key",
            &path("alice.key"),
            "--channel",
            &channel,
        ],
    );
    assert_eq!(closing["closed"], false);
    assert!(u(&closing["closable_at"]) > u(&closing["height"]));
    let (ok, _, err) = common::run(&[
        "channel",
        "finish",
        "--rpc",
        &rpc,
        "--key",
        &path("alice.key"),
        "--channel",
        &channel,
    ]);
    assert!(
        !ok && err.contains("cannot be finished before height"),
        "{err}"
    );
    let closed = ok_json(
        &rpc,
        &[
            "channel",
            "close",
            "--key",
            &path("prov.key"),
            "--channel",
            &channel,
        ],
    );
    assert_eq!(closed["closed"], true);
    let mine = ok_json(&rpc, &["wallet", "balance", "--key", &path("alice.key")]);
    assert_eq!(
        u(&mine["balance"]),
        before - 12_345 + 1_234 - 3 * FEE,
        "the unpaid 2,655 came back; open, top-up and close paid the fee"
    );

    // Status: supply accounts for everything; the provider's balance and earnings.
    let status = common::status(&rpc);
    let supply = &status["supply"];
    assert_eq!(
        u(&supply["total_supply"]) + u(&supply["burned"]),
        DEV_BALANCE + u(&supply["emitted"])
    );
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == prov.as_str())
        .expect("provider listed");
    assert_eq!(u(&p["earned"]["channels"]), 11_111);
    assert_eq!(u(&p["earned"]["royalties"]), 0);
    // Registering, settling and closing paid the fee.
    assert_eq!(u(&p["balance"]), 1_000 - 1 + 11_111 - 3 * FEE);
}
