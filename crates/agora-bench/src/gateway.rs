//! `agora bench gateway`: decode speed as a client sees it through the gateway.
//! Streams completions and measures time to first token and decode tokens/s
//! (completion tokens after the first, over the time from first to last chunk).
//! With `--overhead` it is [`crate::overhead`] instead.

use std::time::Instant;

use agora_tasks::{fail, Context};
use serde_json::{json, Value};

use crate::{GatewayArgs, Result};

/// One streamed request's timings.
struct Run {
    ttft_ms: f64,
    completion_tokens: u64,
    decode_tps: f64,
    total_ms: f64,
}

async fn one(http: &reqwest::Client, args: &GatewayArgs, seed: u64) -> Result<Run> {
    let body = json!({
        "model": args.model, "stream": true, "stream_options": {"include_usage": true},
        "max_tokens": args.max_tokens, "temperature": 0.7, "seed": seed,
        "messages": [{"role": "user", "content": args.prompt}],
    });
    let start = Instant::now();
    let mut resp = http
        .post(format!(
            "{}/chat/completions",
            args.url.trim_end_matches('/')
        ))
        .json(&body)
        .send()
        .await?;
    if !resp.status().is_success() {
        fail!(
            "gateway answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let (mut first, mut last, mut tokens) = (None, start, 0u64);
    let mut buf = String::new();
    while let Some(bytes) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(i) = buf.find("\n\n") {
            let event: String = buf.drain(..i + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).context("chunk is not JSON")?;
            if let Some(e) = v.get("error") {
                fail!("stream failed: {e}");
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                tokens = n;
            }
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
            }
        }
    }
    let first = first.context("no content was streamed")?;
    let decode_s = last.duration_since(first).as_secs_f64();
    Ok(Run {
        ttft_ms: first.duration_since(start).as_secs_f64() * 1e3,
        completion_tokens: tokens,
        decode_tps: if decode_s > 0.0 {
            tokens.saturating_sub(1) as f64 / decode_s
        } else {
            0.0
        },
        total_ms: last.duration_since(start).as_secs_f64() * 1e3,
    })
}

/// Run the benchmark (or, with `--overhead`, [`crate::overhead`]) and print a table (or JSON).
pub async fn run(args: GatewayArgs) -> Result<()> {
    if args.overhead {
        return crate::overhead::run(args).await;
    }
    let http = reqwest::Client::new();
    one(&http, &args, 0).await.context("warm-up request")?;
    let mut runs = Vec::new();
    for i in 0..args.requests {
        runs.push(one(&http, &args, 1 + u64::from(i)).await?);
    }
    let mean = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64;
    let (ttft, tps, tokens, total) = (
        mean(|r| r.ttft_ms),
        mean(|r| r.decode_tps),
        mean(|r| r.completion_tokens as f64),
        mean(|r| r.total_ms),
    );
    if args.json {
        let v = json!({"requests": runs.len(), "max_tokens": args.max_tokens, "mean_completion_tokens": tokens,
            "mean_ttft_ms": ttft, "mean_decode_tokens_per_s": tps, "mean_total_ms": total});
        println!("{v}");
        return Ok(());
    }
    println!("| requests | max_tokens | mean completion tokens | mean TTFT (ms) | mean decode tok/s | mean total (ms) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {tokens:.1} | {ttft:.1} | {tps:.1} | {total:.0} |",
        runs.len(),
        args.max_tokens
    );
    Ok(())
}
