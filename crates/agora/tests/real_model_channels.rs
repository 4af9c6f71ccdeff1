//! End to end on the real default model: the devnet's gateway pays its
//! provider through a payment channel funded by the faucet; once the provider
//! settles, its balance has risen by exactly the receipts' costs, and the
//! faucet's balance fell by exactly what it escrowed.

mod common;

use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_types::rpc::ChannelInfo;
use agora_types::{channel_id, AccountId, Keypair, Transcript};

/// Chat requests sent through the gateway.
const JOBS: u64 = 5;
/// How long the settlement may take to land.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);

/// The channel(s) the faucet opened with nonces in `nonces`.
async fn channels_of(
    chain: &ChainClient,
    faucet: &AccountId,
    nonces: std::ops::Range<u64>,
) -> Vec<ChannelInfo> {
    let mut out = Vec::new();
    for n in nonces {
        if let Ok(c) = chain.channel(&channel_id("agora-devnet", faucet, n)).await {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_gateway_pays_the_provider_through_a_channel() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny deposit, so the gateway must top the channel up as jobs add up.
    let devnet = common::devnet_with(
        dir.path(),
        &[
            "--threads",
            "2",
            "--auditors",
            "0",
            "--batch-secs",
            "1",
            "--channel-deposit",
            "3",
            // No reward epochs: emission payouts would move the balances compared here.
            "--tempo-blocks",
            "0",
        ],
    );
    let rpc = devnet.value("chain RPC");
    let base = devnet.value("OpenAI base URL");
    let provider_url = devnet.value("provider");
    let chain = ChainClient::new(&rpc);
    let faucet: Keypair = std::fs::read_to_string(dir.path().join("faucet.key"))
        .unwrap()
        .parse()
        .unwrap();
    let faucet = faucet.account();
    let provider = chain
        .providers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.endpoint == provider_url)
        .expect("the chat provider is registered")
        .id;
    let (p0, f0) = (
        chain.account(&provider).await.unwrap(),
        chain.account(&faucet).await.unwrap(),
    );

    let http = common::keyed_client(&devnet);
    let mut costs = 0u64;
    for seed in 0..JOBS {
        let (id, _) = common::chat_with_receipt(&http, &base, seed).await;
        let t: Transcript = http
            .get(format!("{provider_url}/v1/transcripts/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(t.receipt.receipt.cost > 0);
        costs += t.receipt.receipt.cost;
    }

    // Wait until the provider has settled everything the receipts cost.
    let started = Instant::now();
    let (channel, p1, f1) = loop {
        let f1 = chain.account(&faucet).await.unwrap();
        let open = channels_of(&chain, &faucet, f0.nonce..f1.nonce).await;
        let p1 = chain.account(&provider).await.unwrap();
        if let [c] = open.as_slice() {
            if c.paid == costs {
                break (c.clone(), p1, f1);
            }
            assert!(c.paid < costs, "paid {} > owed {costs}", c.paid);
        }
        assert!(
            started.elapsed() < SETTLE_DEADLINE,
            "not settled in time: owed {costs}, channels {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The provider got exactly the receipts' costs (royalty is 0 on the
    // devnet) and paid the fee of each of its transactions (commits,
    // settlements); emissions, if a tempo paid any, are counted apart.
    let fee = u128::from(agora_ledger::DEFAULT_TX_FEE);
    assert_eq!(channel.provider, provider);
    assert_eq!(channel.client, faucet);
    assert_eq!(channel.jobs, JOBS);
    assert_eq!(p1.earned.channels - p0.earned.channels, u128::from(costs));
    let emitted = p1.earned.emissions - p0.earned.emissions;
    let provider_fees = fee * u128::from(p1.nonce - p0.nonce);
    assert_eq!(
        u128::from(p1.balance) + provider_fees - u128::from(p0.balance),
        u128::from(costs) + emitted
    );
    // The payer's balance fell by exactly what it escrowed and the fees of
    // its transactions (open, top-ups); the escrow holds what was escrowed
    // minus what was paid.
    assert!(channel.deposit > 3, "the channel was topped up");
    assert!(channel.deposit >= costs);
    let f_emitted = f1.earned.emissions - f0.earned.emissions;
    let payer_fees = fee * u128::from(f1.nonce - f0.nonce);
    assert_eq!(
        u128::from(f0.balance) + f_emitted - u128::from(f1.balance),
        u128::from(channel.deposit) + payer_fees
    );
    // The agora status view reports the same channel earnings.
    let status = common::status(&rpc);
    let listed = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"].as_str() == Some(&provider.to_hex()))
        .cloned()
        .unwrap_or_else(|| panic!("provider missing from {status}"));
    assert_eq!(
        listed["earned"]["channels"].as_u64(),
        Some(p1.earned.channels as u64),
        "{listed}"
    );
}
