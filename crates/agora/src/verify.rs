//! `agora verify`: the audit tools of `agora-bench` (calibrate, check) and
//! `agora verify output`, which proves where an output came from trusting
//! nothing but the validator set's identity (its BLS group key): (a) the
//! text hashes to the receipt's `text_hash`, (b) the provider signed the
//! receipt, (c) the receipt is a leaf of a committed batch root, (d) the
//! transaction that created the batch is in a block whose finalization
//! certificate verifies under the identity; online it also reports (e) the
//! audit verdict, if the job was drawn. It can export the evidence as a
//! C2PA-style manifest and check such a manifest offline.

use std::path::{Path, PathBuf};

use agora_chain_client::ChainClient;
use agora_consensus::provenance::{verify_output, verify_receipt, VerifiedOutput};
use agora_types::audit::{batch_id, dispute_id};
use agora_types::c2pa::Manifest;
use agora_types::provenance::{
    find_batch_tx, BatchRef, OutputEvidence, ReceiptRecord, VerdictEntry,
};
use agora_types::{Hash32, TxKind};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

/// `agora verify`.
#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// The audit tools.
    #[command(flatten)]
    Audit(agora_bench::VerifyCommand),
    /// Prove where an output came from: its text hash (the receipt's
    /// `text_hash`; the `output_hash` over tokens is covered by the
    /// provider's signature, so checking the text is enough), the
    /// provider's signature, the Merkle proof into a committed batch, and
    /// the batch's transaction in a block finalized under `--identity`.
    Output(OutputArgs),
}

/// `agora verify output`.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Job id, as the gateway's `x-agora-receipt` header gives it (online).
    #[arg(long, conflicts_with = "manifest")]
    pub receipt: Option<Hash32>,
    /// The output text, to check against the receipt (online: optional).
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// The validator set's identity: its BLS group key in hex, or a file
    /// holding it (a node's `identity.hex`).
    #[arg(long)]
    pub identity: String,
    /// The gateway that served the job (`GET /v1/receipts/{id}`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
    /// Write the evidence as a C2PA-style manifest (JSON) to this file.
    #[arg(long, conflicts_with = "manifest")]
    pub manifest_out: Option<PathBuf>,
    /// Check this manifest offline (no network) against `--text` and `--identity`.
    #[arg(long, requires = "text")]
    pub manifest: Option<PathBuf>,
}

/// Run `agora verify`.
pub async fn run(command: VerifyCommand) -> Result<()> {
    match command {
        VerifyCommand::Audit(c) => {
            Ok(tokio::task::spawn_blocking(move || agora_bench::run_verify(c)).await??)
        }
        VerifyCommand::Output(args) => output(args).await,
    }
}

fn identity(arg: &str) -> Result<Vec<u8>> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) => arg.to_string(),
    };
    hex::decode(text.trim()).context("--identity is neither a hex group key nor a file holding one")
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

async fn output(args: OutputArgs) -> Result<()> {
    let identity = identity(&args.identity)?;
    let text = args.text.as_deref().map(read_text).transpose()?;
    if let Some(path) = &args.manifest {
        let json = read_text(path)?;
        let manifest: Manifest =
            serde_json::from_str(&json).context("the manifest does not parse")?;
        let evidence = manifest.evidence()?;
        let text = text.ok_or_else(|| anyhow!("--manifest needs --text"))?;
        let ok = verify_output(&identity, evidence, &text)?;
        report(evidence, &ok, true);
        println!("verified offline");
        return Ok(());
    }
    let job = args
        .receipt
        .ok_or_else(|| anyhow!("give --receipt ID (online) or --manifest FILE (offline)"))?;
    let record = fetch_record(&args.gateway, &job).await?;
    let Some(batch) = record.batch.clone() else {
        bail!("job {job}'s receipt is not in a committed batch yet; try again later");
    };
    let chain = ChainClient::new(&args.rpc);
    let evidence = gather(&chain, &record, &batch).await?;
    let ok = match &text {
        Some(text) => verify_output(&identity, &evidence, text)?,
        None => verify_receipt(&identity, &evidence)?,
    };
    report(&evidence, &ok, text.is_some());
    let nonce = evidence.block.txs[evidence.tx_index as usize].tx.nonce;
    let id = batch_id(&record.provider.id, nonce);
    if id != batch.batch {
        bail!(
            "the gateway names batch {}, the chain's is {id}",
            batch.batch
        );
    }
    println!("batch: {id}");
    audit(&args.rpc, &chain, &id, batch.index).await;
    if let Some(path) = &args.manifest_out {
        let generator = format!("agora/{}", env!("CARGO_PKG_VERSION"));
        let manifest = Manifest::new(&generator, evidence);
        std::fs::write(path, serde_json::to_string_pretty(&manifest)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("manifest: {}", path.display());
    }
    println!("verified");
    Ok(())
}

/// The gateway's record of job `job` (`GET /v1/receipts/{id}`; `gateway`
/// with or without its `/v1` suffix).
pub(crate) async fn fetch_record(gateway: &str, job: &Hash32) -> Result<ReceiptRecord> {
    let base = gateway.trim_end_matches('/').trim_end_matches("/v1");
    let url = format!("{base}/v1/receipts/{job}");
    let resp = reqwest::get(&url)
        .await
        .with_context(|| format!("gateway {url} unreachable"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!("gateway answered {status}: {body}");
    }
    resp.json()
        .await
        .context("the gateway's receipt record does not parse")
}

/// The block at the batch's height, the transaction that created the batch
/// and the block's certificate: the evidence, not yet checked.
async fn gather(chain: &ChainClient, r: &ReceiptRecord, b: &BatchRef) -> Result<OutputEvidence> {
    let block = chain.block(b.height).await?;
    let tx_index = find_batch_tx(&block.txs, &r.provider.id, &b.root).ok_or_else(|| {
        anyhow!(
            "block {} holds no transaction of {} creating batch root {}",
            b.height,
            r.provider.id,
            b.root
        )
    })?;
    let finality = chain.finality(b.height).await?;
    let certificate = finality
        .certificate
        .ok_or_else(|| anyhow!("block {} has no finalization certificate yet", b.height))?;
    Ok(OutputEvidence {
        receipt: r.receipt.clone(),
        root: b.root,
        proof: b.proof.clone(),
        block,
        tx_index,
        certificate,
    })
}

fn report(e: &OutputEvidence, ok: &VerifiedOutput, with_text: bool) {
    let r = &e.receipt.receipt;
    if with_text {
        println!("text: matches the receipt's text_hash {}", r.text_hash);
    } else {
        println!("text: not checked (no --text)");
    }
    println!("receipt: job {} signed by provider {}", ok.job, r.provider);
    println!(
        "inclusion: leaf {} of {} under root {}",
        e.proof.index, e.proof.leaf_count, e.root
    );
    let how = match &e.block.txs[e.tx_index as usize].tx.kind {
        TxKind::SettleChannel { .. } => "SettleChannel",
        _ => "CommitReceipts",
    };
    println!(
        "block: {} at height {} holds the {how} transaction {}",
        ok.block,
        ok.height,
        e.block.txs[e.tx_index as usize].id()
    );
    println!("finality: the certificate verifies under the identity");
}

/// (e) Whether the job was drawn for audit, and the verdicts on it.
async fn audit(rpc: &str, chain: &ChainClient, batch: &Hash32, index: u64) {
    let live = match chain.batch(batch).await {
        Ok(b) => b,
        Err(_) => {
            println!("audit: the batch is past its audit window (no longer on chain)");
            return;
        }
    };
    if live.seed.is_none() {
        println!("audit: not drawn yet");
        return;
    }
    let Some((_, auditor)) = live.audits.iter().find(|(i, _)| *i == index) else {
        println!("audit: not drawn for this job");
        return;
    };
    let url = format!("{}/verdicts/{batch}", rpc.trim_end_matches('/'));
    let verdicts: Vec<VerdictEntry> = match reqwest::get(&url).await {
        Ok(resp) => resp.json().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let verdict = verdicts
        .iter()
        .find(|v| v.index == index && v.auditor == *auditor);
    match verdict {
        Some(v) if v.passed => println!("audit: drawn, auditor {auditor}: passed"),
        Some(_) => {
            let disputed = chain
                .disputes()
                .await
                .map(|d| d.iter().any(|d| d.id == dispute_id(batch, index)))
                .unwrap_or(false);
            println!("audit: drawn, auditor {auditor}: FAILED (dispute open: {disputed})");
        }
        None => println!("audit: drawn, auditor {auditor}: no verdict yet"),
    }
}
