//! Starting a gateway as a role: serve the OpenAI-compatible API for the
//! network behind a chain RPC, refresh the provider directory in the
//! background, and (given a funded key) pay providers through channels.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_tasks::{bind, serve, Context, Failure, ServeLimits, Shutdown, Task};
use agora_types::{Amount, Keypair};

use crate::{
    ApiError, ApiKeys, ChainDirectory, ChainFunding, Gateway, GatewayConfig, Payer, PayerConfig,
};

/// How long a starting gateway waits for a model to appear on chain.
const MODEL_WAIT: Duration = Duration::from_secs(60);

/// How the gateway protects itself. A non-streamed completion sends its
/// head only when the whole generation is done, after the provider queued
/// and ran it, so the head deadline is long: 15 minutes (a streamed one
/// sends its head once a provider starts, and its body is never timed; the
/// per-provider idle timeout watches a silent provider). 30 s to send a
/// request head (and of keep-alive idleness); 1,024 requests in flight, each
/// holding a connection to a provider while it runs.
pub fn serve_limits() -> ServeLimits {
    ServeLimits {
        header_read: Duration::from_secs(30),
        max_in_flight: 1024,
        // A quarter each: one address cannot take the whole server.
        max_per_client: 256,
        response_head: Duration::from_secs(15 * 60),
        refuse: ApiError::refusal,
    }
}

/// What a gateway needs to start.
pub struct GatewaySetup {
    /// Chain RPC URL.
    pub chain_url: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Pay providers for every job through channels (`None`: serve unpaid).
    pub payer: Option<PayerSetup>,
}

/// How a gateway pays providers: through channels funded from `key`.
pub struct PayerSetup {
    /// The funded key that opens channels and signs vouchers.
    pub key: Keypair,
    /// Escrow of each new channel, and the least a top-up adds.
    pub deposit: Amount,
    /// The client keys that may spend through this payer.
    pub api_keys: ApiKeys,
}

/// A started gateway.
pub struct GatewayHandle {
    /// Base URL (the OpenAI base URL is this plus `/v1`).
    pub url: String,
    /// The HTTP server and directory refresh task.
    pub task: Task,
    gateway: Arc<Gateway<ChainDirectory>>,
}

impl GatewayHandle {
    /// Wait until the chain lists a provider for `model`, so the first request succeeds.
    pub async fn wait_for_model(&self, model: &str) -> Result<(), Failure> {
        self.gateway
            .wait_for_model(model, MODEL_WAIT)
            .await
            .with_context(|| format!("the gateway never saw a provider for {model}"))
    }
}

/// Serve the OpenAI-compatible API for the network behind `setup.chain_url`,
/// paying providers for every job when `setup.payer` is given.
pub async fn start(setup: GatewaySetup, shutdown: Shutdown) -> Result<GatewayHandle, Failure> {
    let chain = ChainClient::new(&setup.chain_url);
    // Which chain decides whether provider endpoints may be private addresses.
    let chain_id = chain
        .status()
        .await
        .with_context(|| format!("reading the chain at {}", setup.chain_url))?
        .chain_id;
    let directory = ChainDirectory(chain.clone());
    let gateway_config = GatewayConfig {
        chain_id: chain_id.clone(),
        ..GatewayConfig::default()
    };
    let gateway = match setup.payer {
        None => Gateway::new(directory, gateway_config),
        Some(p) => {
            tracing::info!(account = %p.key.account(), deposit = p.deposit, "the gateway pays providers through channels");
            let config = PayerConfig {
                deposit: p.deposit.max(1),
                chain_id,
                ..PayerConfig::default()
            };
            let payer = Payer::new(ChainFunding::new(chain, p.key.clone()), p.key, config);
            tokio::spawn(payer.clone().run_retries(shutdown.clone().wait()));
            let config = GatewayConfig {
                api_keys: Some(p.api_keys),
                ..gateway_config
            };
            Gateway::with_payer(directory, config, payer).context("starting the gateway")?
        }
    };
    let listener = bind(setup.listen, "gateway").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = gateway.router();
    let refresher = tokio::spawn(gateway.clone().run_refresh(shutdown.clone().wait()));
    let task = tokio::spawn(async move {
        serve(listener, router, serve_limits(), shutdown.wait())
            .await
            .context("gateway server")?;
        refresher.await.context("directory refresh task")?;
        Ok(())
    });
    Ok(GatewayHandle { url, task, gateway })
}
