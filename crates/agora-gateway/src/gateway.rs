//! The [`Gateway`]: configuration, the cached view of the network, and the router.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use agora_types::{ModelEntry, ProviderInfo};
use agora_wire::openai::{self, Endpoint};
use axum::routing::{get, post};
use axum::Router;

use agora_keys::{Hold, KeyBook};

use crate::access::{presented, Access};
use crate::metrics::{self, GatewayMetrics};
use crate::payments::JobPayer;
use crate::routing::HealthBook;
use crate::{admin, handlers, ApiError, Directory, DirectoryError, Snapshot};

/// How the gateway behaves.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// How often the directory is re-read in the background.
    pub refresh_interval: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest silence tolerated from a provider during a job.
    pub provider_idle_timeout: Duration,
    /// TCP connect timeout towards providers.
    pub connect_timeout: Duration,
    /// Hash ([`agora_keys::hash`]) of the secret the admin API requires
    /// (`None`: no admin API).
    pub admin_key_hash: Option<agora_types::Hash32>,
    /// The chain served: unless it is a development chain (and by default,
    /// empty), provider endpoints are dialled at public addresses only.
    pub chain_id: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            refresh_interval: Duration::from_secs(2),
            max_body_bytes: 4 << 20,
            provider_idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            admin_key_hash: None,
            chain_id: String::new(),
        }
    }
}

/// Why a gateway operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The directory could not be read.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The model never got a provider within the wait.
    #[error("no provider serves {model} after waiting {waited:?}")]
    ModelNotServed {
        /// The model name.
        model: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// Minimum time between on-demand directory reads (requests for unknown models).
const MIN_REFRESH_GAP: Duration = Duration::from_millis(250);

/// The OpenAI-compatible gateway over a [`Directory`].
pub struct Gateway<D> {
    pub(crate) directory: D,
    pub(crate) config: GatewayConfig,
    pub(crate) http: reqwest::Client,
    cache: RwLock<Option<Snapshot>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    pub(crate) health: Mutex<HealthBook>,
    pub(crate) access: Access,
    pub(crate) metrics: GatewayMetrics,
    /// Receipts of the last jobs served, for `GET /v1/receipts/{id}`.
    pub(crate) receipts: Mutex<crate::receipts::ReceiptBook>,
    /// Signed key requests already served (`POST /v1/keys`), against replay.
    pub(crate) key_requests: Mutex<crate::self_keys::SeenRequests>,
}

impl<D: Directory> Gateway<D> {
    /// An open gateway reading the network from `directory`: no keys, no payments.
    pub fn new(directory: D, config: GatewayConfig) -> Arc<Self> {
        Self::build(directory, config, Access::Open)
    }

    /// A gateway that serves only `book`'s keys and pays providers for
    /// every finished job from the asking key's account through `payer`.
    pub fn with_payer(
        directory: D,
        config: GatewayConfig,
        book: Arc<KeyBook>,
        payer: Arc<dyn JobPayer>,
    ) -> Arc<Self> {
        Self::build(directory, config, Access::Keyed { book, payer })
    }

    fn build(directory: D, config: GatewayConfig, access: Access) -> Arc<Self> {
        // A provider's endpoint never redirects the gateway elsewhere, nor
        // resolves into its private network (SSRF).
        let builder = reqwest::Client::builder().connect_timeout(config.connect_timeout);
        let http = agora_tasks::endpoint_client(builder, &config.chain_id)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Arc::new(Gateway {
            directory,
            config,
            http,
            cache: RwLock::new(None),
            last_refresh: tokio::sync::Mutex::new(None),
            health: Mutex::new(HealthBook::default()),
            access,
            metrics: GatewayMetrics::default(),
            receipts: Mutex::default(),
            key_requests: Mutex::default(),
        })
    }

    /// All routes of the API.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(openai::MODELS_ROUTE, get(handlers::models::<D>))
            .route(openai::MODEL_ROUTE, get(handlers::model::<D>))
            .route(Endpoint::Chat.route(), post(handlers::chat::<D>))
            .route(
                Endpoint::Completions.route(),
                post(handlers::completions::<D>),
            )
            .route(
                crate::embeddings::EMBEDDINGS_ROUTE,
                post(crate::embeddings::embeddings::<D>),
            )
            .route(
                crate::receipts::RECEIPTS_ROUTE,
                get(crate::receipts::receipt::<D>),
            )
            .route("/health", get(handlers::health::<D>))
            .route(
                crate::console_api::PROVIDERS_ROUTE,
                get(crate::console_api::providers::<D>),
            )
            .route(
                crate::console_api::CHAIN_ROUTE,
                axum::routing::any(crate::console_api::chain::<D>),
            )
            .route(admin::USAGE_ROUTE, get(admin::own_usage::<D>))
            .route(
                crate::self_keys::SELF_KEYS_ROUTE,
                post(crate::self_keys::create::<D>),
            )
            .route(
                crate::self_keys::WITHDRAW_ROUTE,
                post(crate::self_keys::withdraw::<D>),
            )
            .merge(admin::routes(self))
            .merge(agora_console::router())
            .route(agora_metrics::METRICS_ROUTE, get(metrics::scrape::<D>))
            .fallback(handlers::unknown_route)
            .method_not_allowed_fallback(handlers::wrong_method)
            .layer(self.metrics.http_layer())
            .with_state(self.clone())
    }

    /// The gateway's metrics (served at `GET /metrics`), for the parts of
    /// the gateway that report spend and budgets per API key.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// Re-read the directory now.
    pub async fn refresh(&self) -> Result<(), DirectoryError> {
        let snapshot = self.directory.snapshot().await?;
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        *self.last_refresh.lock().await = Some(Instant::now());
        Ok(())
    }

    /// Re-read what every account of the key book can spend (free balance
    /// and unspent channel escrow); an account that cannot be read keeps
    /// its last known funds, which only fall as it spends.
    pub async fn refresh_funds(&self) {
        let Access::Keyed { book, payer } = &self.access else {
            return;
        };
        for account in book.accounts() {
            match payer.clone().available(account).await {
                Ok(funds) => book.set_funds(account, funds),
                Err(e) => tracing::warn!(%account, error = %e, "cannot read an account's funds"),
            }
        }
    }

    /// Refresh the directory and the accounts' funds every
    /// `refresh_interval` until `shutdown` resolves.
    pub async fn run_refresh(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let mut ticks = agora_tasks::Periodic::every(self.config.refresh_interval, shutdown);
        while ticks.tick().await {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "cannot refresh the provider directory");
            }
            self.refresh_funds().await;
        }
    }

    /// Wait until some provider serves the model called `name`.
    pub async fn wait_for_model(&self, name: &str, timeout: Duration) -> Result<(), GatewayError> {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let outcome = self.refresh().await;
            if let Some(snap) = self.snapshot() {
                if snap
                    .model(name)
                    .is_some_and(|m| snap.providers_of(m).next().is_some())
                {
                    return Ok(());
                }
            }
            if started.elapsed() >= timeout {
                outcome?;
                return Err(GatewayError::ModelNotServed {
                    model: name.to_string(),
                    waited: started.elapsed(),
                });
            }
        }
    }

    /// Let a completion request through if the gateway is open or it
    /// carries a live key (budgets are checked once the body is read).
    pub(crate) fn authorize(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        match &self.access {
            Access::Keyed { book, .. } => book.identify(presented(headers)).map(drop)?,
            Access::Open => {}
        }
        Ok(())
    }

    /// Whether this gateway pays for jobs through payment channels (and so
    /// tells providers to commit them by settlement, not in their batches).
    pub(crate) fn paid_by_channel(&self) -> bool {
        matches!(self.access, Access::Keyed { .. })
    }

    /// A job whose receipt checked out: charge it to the request's key and
    /// pay its provider from that key's account.
    pub(crate) fn job_done(
        &self,
        provider: &ProviderInfo,
        receipt: &agora_types::SignedReceipt,
        hold: Option<&Mutex<Hold>>,
    ) {
        let served = agora_types::provenance::ServedBy {
            id: provider.id,
            endpoint: provider.endpoint.clone(),
        };
        self.receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(receipt, served);
        let (Access::Keyed { payer, .. }, Some(hold)) = (&self.access, hold) else {
            return;
        };
        let mut hold = hold.lock().unwrap_or_else(|e| e.into_inner());
        // Both are on disk before the client is answered: first what the
        // provider is owed, then what the key spent.
        payer
            .clone()
            .job_done(hold.account, provider.clone(), receipt.clone());
        let usage = receipt.receipt.usage;
        hold.charge(
            receipt.receipt.cost,
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        self.metrics
            .record_spend(&hold.key_id, receipt.receipt.cost);
    }

    /// The last snapshot read, if any.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The chain's id from the last snapshot (empty before the first, which
    /// no receipt matches).
    pub(crate) fn chain_id(&self) -> String {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache
            .as_ref()
            .map(|s| s.chain_id.clone())
            .unwrap_or_default()
    }

    /// Refresh unless another refresh happened very recently.
    async fn refresh_if_stale(&self) -> Result<(), DirectoryError> {
        let last = *self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH_GAP) {
            return Ok(());
        }
        self.refresh().await
    }

    /// The registry entry and providers for the model a request names.
    pub(crate) async fn resolve(
        &self,
        model: &str,
    ) -> Result<(ModelEntry, Vec<ProviderInfo>), ApiError> {
        let lookup = |snap: &Snapshot| {
            snap.model(model)
                .map(|m| (m.clone(), snap.providers_of(m).cloned().collect::<Vec<_>>()))
        };
        let cached = self.snapshot().as_ref().and_then(lookup);
        let found = match cached {
            Some((m, providers)) if !providers.is_empty() => Some((m, providers)),
            _ => {
                // Unknown or unserved in the cache: the chain may have moved on.
                if let Err(e) = self.refresh_if_stale().await {
                    if self.snapshot().is_none() {
                        return Err(ApiError::directory(format!(
                            "the network directory cannot be read: {e}"
                        )));
                    }
                }
                self.snapshot().as_ref().and_then(lookup)
            }
        };
        match found {
            None => Err(ApiError::unknown_model(model)),
            Some((_, providers)) if providers.is_empty() => Err(ApiError::no_provider(format!(
                "No provider is serving `{model}` right now"
            ))),
            Some(found) => Ok(found),
        }
    }
}
