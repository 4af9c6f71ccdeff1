//! The network the overhead benchmark measures, in this process: a chain
//! (single producer, 200 ms blocks, the devnet genesis), a provider running
//! the [`InstantEngine`] behind the real provider service and server loop,
//! registered on the chain like any provider, and the real paying gateway
//! (`agora_gateway::start` with a key book: the key's budget reserved and
//! charged, a payment channel voucher sent to the provider after every job), as `agora devnet`
//! runs them.

use std::path::Path;
use std::sync::Arc;

use agora_chain_client::ChainClient;
use agora_gateway::{GatewaySetup, PayerSetup};
use agora_provider::{register_on_chain, AuditGate, ChainAuditGate, Provider, TranscriptStore};
use agora_tasks::{bind, serve, Context, Failure, Shutdown};
use agora_types::{Hash32, Keypair, ModelEntry};

use super::instant::InstantEngine;

/// The model name the instant provider serves.
pub const MODEL: &str = "instant";

/// The started network: where to reach each part.
pub struct Network {
    /// The provider's base URL (its job endpoint is `{provider}/v1/jobs`).
    pub provider: String,
    /// The gateway's OpenAI base URL.
    pub gateway: String,
    /// A client API key the gateway accepts.
    pub api_key: String,
    /// The instant model's registry entry.
    pub model: ModelEntry,
    /// The chain's RPC URL.
    pub chain: String,
}

/// The instant model's registry entry (its id, a hash of a fixed string, names no file).
fn instant_model() -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(b"agora-bench instant engine"),
        name: MODEL.into(),
        architecture: "none".into(),
        quantization: "none".into(),
        size_bytes: 0,
        license: "none".into(),
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

/// Start chain, provider and gateway under `dir`; they stop on `shutdown`.
pub async fn start(dir: &Path, shutdown: Shutdown) -> Result<Network, Failure> {
    let (faucet, provider_key) = (Keypair::generate(), Keypair::generate());
    let node = crate::node::start_node(
        dir,
        &[faucet.account(), provider_key.account()],
        agora_ledger::Params::default(),
        shutdown.clone(),
    )
    .await?;
    let chain = ChainClient::new(&node.rpc_url);
    let model = instant_model();
    let provider = start_provider(dir, &chain, &provider_key, &model, shutdown.clone()).await?;
    let api_keys =
        agora_gateway::client_keys(&dir.join("api-keys"), true).map_err(Failure::other)?;
    let api_key = api_keys[0].clone();
    let gateway = agora_gateway::start(
        GatewaySetup {
            chain_url: node.rpc_url.clone(),
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            payer: Some(PayerSetup {
                data_dir: dir.join("gateway"),
                deposit: 1_000_000_000,
                import: Some(faucet),
                import_keys: api_keys,
            }),
        },
        shutdown,
    )
    .await?;
    gateway.wait_for_model(MODEL).await?;
    Ok(Network {
        provider,
        gateway: format!("{}/v1", gateway.url),
        api_key,
        model,
        chain: node.rpc_url,
    })
}

/// The provider service on the instant engine, served and registered like
/// `agora_provider::start` does (it takes vouchers; receipts are not
/// committed on chain, which happens off the request path anyway).
async fn start_provider(
    dir: &Path,
    chain: &ChainClient,
    key: &Keypair,
    model: &ModelEntry,
    shutdown: Shutdown,
) -> Result<String, Failure> {
    let transcripts =
        TranscriptStore::open(&dir.join("transcripts.redb")).map_err(Failure::other)?;
    let gate = ChainAuditGate::connect(chain.clone())
        .await
        .context("reading the chain")?;
    let provider = Provider::new(
        gate.chain_id(),
        Arc::new(InstantEngine::new(MODEL)),
        key.clone(),
        model.id,
        agora_devnet::devnet::DEVNET_PRICE,
        transcripts,
    )
    .with_channels(Arc::new(chain.clone()))
    .with_audit_gate(Arc::new(gate));
    let listener = bind("127.0.0.1:0".parse().expect("a socket address"), "provider").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let router = provider.router();
    tokio::spawn(async move {
        serve(
            listener,
            router,
            agora_provider::serve_limits(),
            shutdown.wait(),
        )
        .await
    });
    let (price, stake) = (
        agora_devnet::devnet::DEVNET_PRICE,
        agora_devnet::devnet::DEVNET_STAKE,
    );
    register_on_chain(chain, key, &endpoint, model, price, stake, true)
        .await
        .map_err(Failure::other)?;
    Ok(endpoint)
}
