//! `agora bench gateway --overhead`: what a proxy adds to every request.
//! The same load (keep-alive HTTP/1.1 clients, one connection each, at
//! each concurrency level) goes first to an upstream that answers at once,
//! called directly, then through the proxy in front of it; the table gives
//! both latencies and rates and the difference of their percentiles.
//!
//! Without `--external-url` the proxy is agora's paying gateway in front of
//! a provider on the [`InstantEngine`], all started here on a runtime of
//! their own (`network`); "direct" is the provider's `POST /v1/jobs`.
//! With `--external-url` it is any OpenAI-compatible proxy (LiteLLM in
//! `scripts/bench-litellm.sh`), and "direct" is its upstream's `POST
//! /chat/completions` (`--direct-url`), for instance this command's own
//! instant stub served with `--serve-stub` (`stub`).

mod instant;
mod load;
mod network;
mod stub;
mod table;

use std::time::Duration;

use agora_tasks::{fail, Context, Failure, Shutdown};
use agora_types::{ChatMessage, JobInput, JobRequest, SamplingParams};
use serde_json::json;

pub use instant::{InstantEngine, REPLY};
pub use load::{percentile, Sample, Target};
pub use network::{Network, MODEL};
pub use stub::{router as stub_router, start as start_stub, STUB_MODEL};
pub use table::{markdown, Row, Stats};

use crate::{GatewayArgs, Result};

/// Tokens each request asks for at most (the upstreams answer two).
const MAX_TOKENS: u32 = 16;
/// The prompt of every request.
const PROMPT: &str = "Say hi";

/// Run the overhead benchmark as `args` say and print its table (or JSON).
pub async fn run(args: GatewayArgs) -> Result<()> {
    if let Some(listen) = args.serve_stub {
        let (url, task) = stub::start(listen, Shutdown::on_signals()).await?;
        println!("stub upstream: {url} (model {STUB_MODEL}); Ctrl-C or SIGTERM stops it");
        return Ok(task.await??);
    }
    let duration = Duration::from_secs_f64(args.seconds.max(0.0));
    if let Some(url) = &args.external_url {
        let direct = args
            .direct_url
            .as_deref()
            .context("--external-url needs --direct-url, the proxy's upstream")?;
        let key = args.external_key.clone();
        let rows = run_external(&args.model, direct, url, key, &args.clients, duration).await?;
        return report(&args, "proxy", &rows);
    }
    let rows = run_agora(&args.clients, duration, args.hold).await?;
    report(&args, "gateway", &rows)
}

/// Start the in-process network, measure the provider directly and through
/// the gateway at each of `levels` for `duration` per target, stop it (after
/// Ctrl-C when `hold`), and return the rows.
pub async fn run_agora(levels: &[usize], duration: Duration, hold: bool) -> Result<Vec<Row>> {
    let levels = self::levels(levels)?;
    let dir = tempfile::tempdir()?;
    let (trigger, shutdown) = Shutdown::manual();
    let (network, thread) = network_thread(dir.path().to_path_buf(), shutdown)?;
    let network = network.await.context("the network thread stopped")??;
    eprintln!(
        "overhead: provider {}, gateway {}, chain {}",
        network.provider, network.gateway, network.chain
    );
    let (direct, proxied) = agora_targets(&network)?;
    let rows = measure(&direct, &proxied, &levels, duration).await;
    if hold && rows.is_ok() {
        println!(
            "holding: gateway {} (api key {}), provider {}; Ctrl-C stops",
            network.gateway, network.api_key, network.provider
        );
        tokio::signal::ctrl_c().await?;
    }
    trigger.trigger();
    let joined = tokio::task::spawn_blocking(move || thread.join()).await?;
    if joined.is_err() {
        fail!("the network thread panicked");
    }
    rows
}

/// Measure `proxy_url` (with `key`) against its upstream `direct_url`, both
/// OpenAI base URLs, sending chat completions for `model`.
pub async fn run_external(
    model: &str,
    direct_url: &str,
    proxy_url: &str,
    key: Option<String>,
    levels: &[usize],
    duration: Duration,
) -> Result<Vec<Row>> {
    let levels = self::levels(levels)?;
    let (direct, proxied) = external_targets(model, direct_url, proxy_url, key)?;
    measure(&direct, &proxied, &levels, duration).await
}

/// The concurrency levels, refusing an empty list or a zero.
fn levels(clients: &[usize]) -> Result<Vec<usize>, Failure> {
    if clients.is_empty() || clients.contains(&0) {
        fail!("--clients needs one or more levels above 0");
    }
    Ok(clients.to_vec())
}

/// Where the started network (or why it did not start) arrives.
type Started = tokio::sync::oneshot::Receiver<Result<Network, Failure>>;

/// Start the network on a runtime of its own (its own worker threads, as
/// its own process would have), so the load generator's tasks do not share
/// a scheduler with the servers it measures; it stops on `shutdown`.
fn network_thread(
    dir: std::path::PathBuf,
    shutdown: Shutdown,
) -> Result<(Started, std::thread::JoinHandle<()>)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-network")
        .build()?;
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let started = network::start(&dir, shutdown.clone()).await;
            let ok = started.is_ok();
            let _ = tx.send(started);
            if ok {
                shutdown.wait().await;
            }
        });
    });
    Ok((rx, thread))
}

/// The chat request both OpenAI-compatible targets get.
fn chat_body(model: &str) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "seed": 1,
    }))?)
}

/// Direct: the provider's job endpoint; proxied: the gateway with its API key.
fn agora_targets(network: &Network) -> Result<(Target, Target)> {
    let job = JobRequest {
        model: network.model.id,
        input: JobInput::Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: PROMPT.into(),
            }],
        },
        params: SamplingParams::new(MAX_TOKENS, 1.0, 1.0, Vec::new(), 1),
    };
    let direct = Target {
        name: "direct".into(),
        url: jobs_url(&network.provider),
        body: serde_json::to_vec(&job)?,
        bearer: None,
    };
    let proxied = Target {
        name: "gateway".into(),
        url: format!("{}/chat/completions", network.gateway),
        body: chat_body(MODEL)?,
        bearer: Some(network.api_key.clone()),
    };
    Ok((direct, proxied))
}

/// The provider's job endpoint under its base URL.
fn jobs_url(provider: &str) -> String {
    format!("{}/v1/jobs", provider.trim_end_matches('/'))
}

/// Direct: `direct_url`'s chat completions; proxied: `proxy_url`'s with `key`.
fn external_targets(
    model: &str,
    direct_url: &str,
    proxy_url: &str,
    key: Option<String>,
) -> Result<(Target, Target)> {
    let body = chat_body(model)?;
    let direct = Target {
        name: "direct".into(),
        url: format!("{}/chat/completions", direct_url.trim_end_matches('/')),
        body: body.clone(),
        bearer: None,
    };
    let proxied = Target {
        name: "proxy".into(),
        url: format!("{}/chat/completions", proxy_url.trim_end_matches('/')),
        body,
        bearer: key,
    };
    Ok((direct, proxied))
}

/// Each level: the direct target, then the proxied one.
async fn measure(
    direct: &Target,
    proxied: &Target,
    levels: &[usize],
    duration: Duration,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &clients in levels {
        let mut stats = Vec::new();
        for target in [direct, proxied] {
            let sample = load::run(target, clients, duration).await?;
            if let Some(e) = &sample.first_error {
                eprintln!(
                    "overhead: {} at {clients} clients: {} errors, first: {e}",
                    target.name, sample.errors
                );
            }
            let s = Stats::of(&sample);
            eprintln!(
                "overhead: {} at {clients} clients: {} requests, p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s",
                target.name, s.requests, s.p50_ms, s.p99_ms, s.rps
            );
            stats.push(s);
        }
        rows.push(Row {
            clients,
            direct: stats[0],
            proxied: stats[1],
        });
    }
    Ok(rows)
}

/// Print the table (or JSON).
fn report(args: &GatewayArgs, proxy: &str, rows: &[Row]) -> Result<()> {
    if args.json {
        let v = json!({"proxy": proxy, "seconds_per_level": args.seconds, "rows": rows});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", markdown(proxy, rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_refuse_nothing_and_zero() {
        assert_eq!(levels(&[1, 16, 256]).unwrap(), vec![1, 16, 256]);
        assert!(levels(&[]).is_err());
        assert!(levels(&[1, 0]).is_err());
    }

    #[test]
    fn external_targets_call_the_upstream_bare_and_the_proxy_with_the_key() {
        let (direct, proxied) = external_targets(
            "instant",
            "http://127.0.0.1:1/v1/",
            "http://127.0.0.1:2/v1",
            Some("sk-1".into()),
        )
        .unwrap();
        assert_eq!(direct.url, "http://127.0.0.1:1/v1/chat/completions");
        assert_eq!(proxied.url, "http://127.0.0.1:2/v1/chat/completions");
        assert_eq!(
            (direct.bearer, proxied.bearer.as_deref()),
            (None, Some("sk-1"))
        );
        let body: serde_json::Value = serde_json::from_slice(&direct.body).unwrap();
        assert_eq!(body["model"], "instant");
        assert_eq!(body["max_tokens"], MAX_TOKENS);
    }
}
