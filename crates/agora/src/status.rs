//! `agora status`: the chain head and registries, as text or JSON.

use agora_chain_client::ChainClient;
use anyhow::{Context, Result};

/// Print the status of the chain at `rpc`.
pub async fn run(rpc: &str, json: bool) -> Result<()> {
    let status = ChainClient::new(rpc)
        .status()
        .await
        .context("reading chain status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!("chain {} at height {}", status.chain_id, status.height);
    println!(
        "total supply {}, mempool {}",
        status.total_supply, status.mempool
    );
    println!("models ({}):", status.models.len());
    for m in &status.models {
        println!(
            "  {}  {}  {} {}  {} bytes  {}",
            m.id, m.name, m.architecture, m.quantization, m.size_bytes, m.license
        );
    }
    println!("providers ({}):", status.providers.len());
    for p in &status.providers {
        let names: Vec<String> = p
            .models
            .iter()
            .map(|id| {
                status
                    .models
                    .iter()
                    .find(|m| m.id == *id)
                    .map_or(id.to_hex(), |m| m.name.clone())
            })
            .collect();
        println!(
            "  {}  {}  models [{}]  stake {}  price in/out per 1k {}/{}",
            p.id,
            p.endpoint,
            names.join(", "),
            p.stake,
            p.price.input_per_1k,
            p.price.output_per_1k
        );
    }
    println!("provider audits ({}):", status.audits.len());
    for a in &status.audits {
        let state = match (a.registered, a.audits.slashed) {
            (_, true) => format!("slashed {} and deregistered", a.audits.slashed_amount),
            (true, false) => format!("registered, stake {}", a.stake),
            (false, false) => "deregistered".to_string(),
        };
        println!(
            "  {}  audits passed {}  failed {}  {}",
            a.provider, a.audits.audits_passed, a.audits.audits_failed, state
        );
    }
    Ok(())
}
