//! `agora status`: the chain head and registries, as text or JSON.

use agora_chain_client::ChainClient;
use agora_types::rpc::ChainStatus;
use anyhow::{Context, Result};
use serde_json::Value;

/// Print the status of the chain at `rpc`.
pub async fn run(rpc: &str, json: bool) -> Result<()> {
    let status = ChainClient::new(rpc)
        .status()
        .await
        .context("reading chain status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status_json(&status)?)?);
        return Ok(());
    }
    println!("chain {} at height {}", status.chain_id, status.height);
    println!(
        "total supply {}, mempool {}",
        status.total_supply, status.mempool
    );
    let supply = &status.supply;
    println!(
        "emitted {}, emission pool {}, burned {}, cap {}",
        supply.emitted, supply.emission_pool, supply.burned, supply.supply_cap
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
        if let Some(a) = status.provider_accounts.iter().find(|a| a.id == p.id) {
            println!(
                "      balance {}  earned {} (channels {}, royalties {}, emissions {})",
                a.balance,
                a.earned.total(),
                a.earned.channels,
                a.earned.royalties,
                a.earned.emissions
            );
        }
    }
    println!("provider audits ({}):", status.audits.len());
    for a in &status.audits {
        let state = match (a.registered, a.audits.slashed) {
            (_, true) => format!("slashed {} and deregistered", a.audits.slashed_amount),
            (true, false) => format!("registered, stake {}", a.stake),
            (false, false) => "deregistered".to_string(),
        };
        println!(
            "  {}  audits passed {}  failed {}  flagged {}  {}",
            a.provider,
            a.audits.audits_passed,
            a.audits.audits_failed,
            a.audits.audits_flagged,
            state
        );
    }
    Ok(())
}

/// The status as `--json` prints it: the RPC's fields, with each provider's
/// `balance`, `earned` and audit record (`audits_passed`, `audits_failed`,
/// `audits_flagged`, `slashed`) folded into its own entry; `audits` also lists providers that
/// are gone (slashed and deregistered ones included).
fn status_json(status: &ChainStatus) -> Result<Value> {
    let mut value = serde_json::to_value(status)?;
    let accounts = status.provider_accounts.clone();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("provider_accounts");
        if let Some(Value::Array(providers)) = obj.get_mut("providers") {
            for entry in providers.iter_mut() {
                let id = entry.get("id").and_then(Value::as_str).map(str::to_owned);
                let account = accounts.iter().find(|a| Some(a.id.to_hex()) == id);
                let audits = status
                    .audits
                    .iter()
                    .find(|a| Some(a.provider.to_hex()) == id)
                    .map(|a| a.audits)
                    .unwrap_or_default();
                if let Some(entry) = entry.as_object_mut() {
                    if let Some(a) = account {
                        entry.insert("balance".into(), a.balance.into());
                        entry.insert("earned".into(), serde_json::to_value(a.earned)?);
                    }
                    entry.insert("audits_passed".into(), audits.audits_passed.into());
                    entry.insert("audits_failed".into(), audits.audits_failed.into());
                    entry.insert("audits_flagged".into(), audits.audits_flagged.into());
                    entry.insert("slashed".into(), audits.slashed.into());
                }
            }
        }
    }
    Ok(value)
}
