//! Which providers to try, in which order: OpenRouter's `provider` object
//! (`order`, `only`, `ignore`, `sort`, `max_price`, `allow_fallbacks`, and
//! agora's `require_replayable`) over the providers the chain lists,
//! skipping ones that failed recently.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_types::{AccountId, ProviderInfo};
use rand::Rng;
use serde_json::Value;

use crate::ApiError;

/// How long a failed provider is tried only after the healthy ones.
pub const OUTAGE_WINDOW: Duration = Duration::from_secs(30);

/// How to rank providers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Random, weighted towards cheap providers (1/price²), the rest as fallbacks.
    #[default]
    Balanced,
    /// Cheapest first.
    Price,
    /// Highest observed decode speed first.
    Throughput,
    /// Lowest observed time to first token first.
    Latency,
}

/// A client's provider preferences.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// Providers (account hex or endpoint URL) to try first, in this order.
    pub order: Vec<String>,
    /// If set, only these providers.
    pub only: Option<Vec<String>>,
    /// Never these providers.
    pub ignore: Vec<String>,
    /// Ranking of the rest.
    pub sort: Sort,
    /// Hard ceiling on price per 1k prompt tokens.
    pub max_prompt_price: Option<f64>,
    /// Hard ceiling on price per 1k completion tokens.
    pub max_completion_price: Option<f64>,
    /// Try other providers when the first choice fails.
    pub allow_fallbacks: bool,
    /// Only providers whose jobs replay exactly (agora's engine), never an
    /// upstream server's, which validators can only judge statistically.
    pub require_replayable: bool,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            order: Vec::new(),
            only: None,
            ignore: Vec::new(),
            sort: Sort::Balanced,
            max_prompt_price: None,
            max_completion_price: None,
            allow_fallbacks: true,
            require_replayable: false,
        }
    }
}

fn names(v: &Value, param: &str) -> Result<Vec<String>, ApiError> {
    v.as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| ApiError::invalid(param, format!("`{param}` must be an array of strings")))
}

impl Routing {
    /// Parse the request's `provider` object.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        let Some(obj) = v.as_object() else {
            return Err(ApiError::invalid(
                "provider",
                "`provider` must be an object",
            ));
        };
        let mut r = Routing::default();
        for (key, value) in obj {
            if value.is_null() {
                continue;
            }
            let param = format!("provider.{key}");
            match key.as_str() {
                "order" => r.order = names(value, &param)?,
                "only" => r.only = Some(names(value, &param)?),
                "ignore" => r.ignore = names(value, &param)?,
                "allow_fallbacks" => {
                    r.allow_fallbacks = value
                        .as_bool()
                        .ok_or_else(|| ApiError::invalid(&param, "must be a boolean"))?
                }
                "require_replayable" => {
                    r.require_replayable = value
                        .as_bool()
                        .ok_or_else(|| ApiError::invalid(&param, "must be a boolean"))?
                }
                // OpenRouter's: only providers that honour every parameter sent.
                // Every provider honours every parameter the gateway accepts
                // except output constraints, which upstream-backed providers
                // refuse; constrained requests are always routed to replayable
                // providers, so the flag is checked and needs no more.
                "require_parameters" => {
                    value
                        .as_bool()
                        .ok_or_else(|| ApiError::invalid(&param, "must be a boolean"))?;
                }
                "sort" => {
                    r.sort = match value.as_str() {
                        Some("price") => Sort::Price,
                        Some("throughput") => Sort::Throughput,
                        Some("latency") => Sort::Latency,
                        _ => {
                            return Err(ApiError::invalid(
                                &param,
                                "must be `price`, `throughput` or `latency`",
                            ))
                        }
                    }
                }
                "max_price" => {
                    let bad = || {
                        ApiError::invalid(
                            &param,
                            "must be an object with numeric `prompt` and `completion`",
                        )
                    };
                    let prices = value.as_object().ok_or_else(bad)?;
                    let get = |k: &str| match prices.get(k) {
                        None | Some(Value::Null) => Ok(None),
                        Some(p) => p.as_f64().map(Some).ok_or_else(bad),
                    };
                    r.max_prompt_price = get("prompt")?;
                    r.max_completion_price = get("completion")?;
                }
                // Soft preferences and filters we have no data for yet are accepted and ignored.
                _ => {}
            }
        }
        Ok(r)
    }

    /// Whether `name` (account hex or endpoint) designates `p`.
    fn names(p: &ProviderInfo, name: &str) -> bool {
        p.id.to_hex() == name || p.endpoint.trim_end_matches('/') == name.trim_end_matches('/')
    }

    /// Providers to try, in order, from those serving the model.
    pub fn plan(&self, candidates: Vec<ProviderInfo>, health: &HealthBook) -> Vec<ProviderInfo> {
        let now = Instant::now();
        let mut allowed: Vec<ProviderInfo> = candidates
            .into_iter()
            .filter(|p| {
                self.only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|n| Self::names(p, n)))
            })
            .filter(|p| !self.ignore.iter().any(|n| Self::names(p, n)))
            .filter(|p| p.replayable || !self.require_replayable)
            .filter(|p| {
                self.max_prompt_price
                    .is_none_or(|max| p.price.input_per_1k as f64 <= max)
            })
            .filter(|p| {
                self.max_completion_price
                    .is_none_or(|max| p.price.output_per_1k as f64 <= max)
            })
            .collect();
        let mut plan = Vec::with_capacity(allowed.len());
        for name in &self.order {
            if let Some(i) = allowed.iter().position(|p| Self::names(p, name)) {
                plan.push(allowed.remove(i));
            }
        }
        if !self.allow_fallbacks && !self.order.is_empty() {
            // Only the providers the client ordered: one that is gone (down,
            // deregistered, slashed) is never replaced by another.
            return plan;
        }
        let (mut healthy, mut failing): (Vec<_>, Vec<_>) = allowed
            .into_iter()
            .partition(|p| !health.failed_recently(&p.id, now));
        let price = |p: &ProviderInfo| p.price.input_per_1k.saturating_add(p.price.output_per_1k);
        let rank = |list: &mut Vec<ProviderInfo>| match self.sort {
            Sort::Price | Sort::Balanced => list.sort_by_key(price),
            Sort::Throughput => list.sort_by(|a, b| {
                health
                    .throughput(&b.id)
                    .total_cmp(&health.throughput(&a.id))
            }),
            Sort::Latency => {
                list.sort_by(|a, b| health.latency(&a.id).total_cmp(&health.latency(&b.id)))
            }
        };
        rank(&mut healthy);
        rank(&mut failing);
        if self.sort == Sort::Balanced && healthy.len() > 1 {
            let first = weighted_pick(&healthy, |p| 1.0 / (price(p).max(1) as f64).powi(2));
            let chosen = healthy.remove(first);
            healthy.insert(0, chosen);
        }
        plan.extend(healthy);
        plan.extend(failing);
        if !self.allow_fallbacks {
            plan.truncate(1);
        }
        plan
    }
}

/// Index drawn with probability proportional to `weight`.
fn weighted_pick<T>(items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rand::thread_rng().gen_range(0.0..total.max(f64::MIN_POSITIVE));
    for (i, item) in items.iter().enumerate() {
        x -= weight(item);
        if x <= 0.0 {
            return i;
        }
    }
    items.len() - 1
}

/// What the gateway has observed about each provider recently.
#[derive(Debug, Default)]
pub struct HealthBook {
    entries: HashMap<AccountId, Health>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    last_failure: Option<Instant>,
    /// Exponential moving averages; 0 until observed.
    ttft_ms: f64,
    tokens_per_s: f64,
}

impl HealthBook {
    /// Record a failure now.
    pub fn failed(&mut self, id: &AccountId) {
        self.entries.entry(*id).or_default().last_failure = Some(Instant::now());
    }

    /// Record a successful job's time to first token and decode speed.
    pub fn succeeded(&mut self, id: &AccountId, ttft: Duration, tokens_per_s: f64) {
        let h = self.entries.entry(*id).or_default();
        let ewma = |old: f64, new: f64| {
            if old == 0.0 {
                new
            } else {
                0.8 * old + 0.2 * new
            }
        };
        h.ttft_ms = ewma(h.ttft_ms, ttft.as_secs_f64() * 1000.0);
        if tokens_per_s.is_finite() && tokens_per_s > 0.0 {
            h.tokens_per_s = ewma(h.tokens_per_s, tokens_per_s);
        }
        h.last_failure = None;
    }

    /// What was measured of a provider: time to first token (ms) and
    /// decode speed (tokens/s), `None` until observed, and whether it
    /// failed within the outage window.
    pub fn measured(&self, id: &AccountId) -> (Option<f64>, Option<f64>, bool) {
        let observed = |x: f64| (x > 0.0).then_some(x);
        (
            observed(self.latency(id)),
            observed(self.throughput(id)),
            self.failed_recently(id, Instant::now()),
        )
    }

    fn failed_recently(&self, id: &AccountId, now: Instant) -> bool {
        self.entries
            .get(id)
            .and_then(|h| h.last_failure)
            .is_some_and(|t| now.saturating_duration_since(t) < OUTAGE_WINDOW)
    }

    fn throughput(&self, id: &AccountId) -> f64 {
        self.entries.get(id).map_or(0.0, |h| h.tokens_per_s)
    }

    /// Unobserved providers rank first so they get measured.
    fn latency(&self, id: &AccountId) -> f64 {
        self.entries.get(id).map_or(0.0, |h| h.ttft_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{Keypair, Price};
    use serde_json::json;

    fn provider(n: u8, input: u64, output: u64) -> ProviderInfo {
        ProviderInfo {
            id: Keypair::from_seed([n; 32]).account(),
            endpoint: format!("http://p{n}"),
            models: vec![],
            price: Price {
                input_per_1k: input,
                output_per_1k: output,
            },
            stake: 1,
            registered_at: 0,
            replayable: true,
        }
    }

    fn endpoints(plan: &[ProviderInfo]) -> Vec<&str> {
        plan.iter().map(|p| p.endpoint.as_str()).collect()
    }

    #[test]
    fn filters_order_and_price_sort() {
        let all = vec![
            provider(1, 30, 30),
            provider(2, 10, 10),
            provider(3, 20, 20),
        ];
        let health = HealthBook::default();
        let r = Routing::parse(&json!({"sort": "price"})).unwrap();
        assert_eq!(
            endpoints(&r.plan(all.clone(), &health)),
            ["http://p2", "http://p3", "http://p1"]
        );
        let r = Routing::parse(
            &json!({"sort": "price", "order": ["http://p1"], "ignore": ["http://p3"]}),
        )
        .unwrap();
        assert_eq!(
            endpoints(&r.plan(all.clone(), &health)),
            ["http://p1", "http://p2"]
        );
        let r = Routing::parse(&json!({"only": [all[2].id.to_hex()]})).unwrap();
        assert_eq!(endpoints(&r.plan(all.clone(), &health)), ["http://p3"]);
        let r = Routing::parse(&json!({"max_price": {"prompt": 20, "completion": 15}})).unwrap();
        assert_eq!(endpoints(&r.plan(all.clone(), &health)), ["http://p2"]);
        let r = Routing::parse(&json!({"sort": "price", "allow_fallbacks": false})).unwrap();
        assert_eq!(endpoints(&r.plan(all, &health)), ["http://p2"]);
    }

    /// Found by the soak: a client that pins a provider with
    /// `allow_fallbacks: false` is never served by another one, even when
    /// the pinned provider is gone (it was slashed and deregistered).
    #[test]
    fn without_fallbacks_only_the_ordered_providers_serve() {
        let all = vec![provider(1, 10, 10), provider(2, 20, 20), provider(3, 5, 5)];
        let health = HealthBook::default();
        let pinned = |order: Value| {
            Routing::parse(&json!({"order": order, "allow_fallbacks": false})).unwrap()
        };
        assert_eq!(
            endpoints(&pinned(json!(["http://p2", "http://p1"])).plan(all.clone(), &health)),
            ["http://p2", "http://p1"]
        );
        let gone = pinned(json!([provider(9, 1, 1).id.to_hex()]));
        assert!(gone.plan(all.clone(), &health).is_empty());
        // With fallbacks the others follow the ordered one.
        let r = Routing::parse(&json!({"order": ["http://p2"], "sort": "price"})).unwrap();
        assert_eq!(
            endpoints(&r.plan(all, &health)),
            ["http://p2", "http://p3", "http://p1"]
        );
    }

    #[test]
    fn require_replayable_leaves_upstream_providers_out() {
        let mut upstream = provider(1, 1, 1);
        upstream.replayable = false;
        let all = vec![upstream, provider(2, 20, 20)];
        let health = HealthBook::default();
        let r = Routing::parse(&json!({"sort": "price"})).unwrap();
        assert_eq!(
            endpoints(&r.plan(all.clone(), &health)),
            ["http://p1", "http://p2"]
        );
        let r = Routing::parse(&json!({"sort": "price", "require_replayable": true})).unwrap();
        assert_eq!(endpoints(&r.plan(all, &health)), ["http://p2"]);
        let e = Routing::parse(&json!({"require_replayable": "yes"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("provider.require_replayable"));
    }

    #[test]
    fn recently_failed_providers_go_last() {
        let all = vec![provider(1, 10, 10), provider(2, 20, 20)];
        let mut health = HealthBook::default();
        health.failed(&all[0].id);
        let r = Routing::parse(&json!({"sort": "price"})).unwrap();
        assert_eq!(
            endpoints(&r.plan(all.clone(), &health)),
            ["http://p2", "http://p1"]
        );
        health.succeeded(&all[0].id, Duration::from_millis(5), 100.0);
        assert_eq!(endpoints(&r.plan(all, &health)), ["http://p1", "http://p2"]);
    }

    #[test]
    fn balanced_prefers_cheap_providers() {
        let all = vec![provider(1, 1, 0), provider(2, 10, 0)];
        let health = HealthBook::default();
        let cheap_first = (0..2000)
            .filter(|_| Routing::default().plan(all.clone(), &health)[0].endpoint == "http://p1")
            .count();
        // Weights 1 and 1/100: the cheap one leads ~99% of the time.
        assert!(cheap_first > 1900, "{cheap_first}");
        assert!(Routing::default().plan(all, &health).len() == 2);
    }

    #[test]
    fn malformed_preferences_are_rejected() {
        for bad in [
            json!("x"),
            json!({"order": "p"}),
            json!({"sort": "fast"}),
            json!({"max_price": {"prompt": "1"}}),
        ] {
            assert_eq!(Routing::parse(&bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
