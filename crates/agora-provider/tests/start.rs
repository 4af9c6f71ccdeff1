//! The provider's start-up enforces the adversary safety guard itself:
//! `--adversary` is refused on any chain but a development chain.

use std::path::Path;

use agora_provider::{start, Adversary, ProviderSetup};
use agora_tasks::Shutdown;
use agora_testkit::GenesisBuilder;
use agora_types::{Keypair, Price};

/// Start a single-producer chain named `chain_id`; returns its RPC URL.
async fn chain(dir: &Path, chain_id: &str) -> String {
    let genesis = GenesisBuilder::new(chain_id).build();
    let setup = agora_chain::NodeSetup {
        dir: dir.to_path_buf(),
        genesis,
        key: Keypair::generate(),
        rpc: "127.0.0.1:0".parse().unwrap(),
        block_ms: 50,
        validator: None,
    };
    let node = agora_chain::start(setup, Shutdown::on_signals())
        .await
        .unwrap();
    node.rpc_url
}

fn cheating_setup(dir: &Path, chain_url: String) -> ProviderSetup {
    ProviderSetup {
        data_dir: dir.join("provider"),
        key: Keypair::generate(),
        // Never reached on a refused chain; on a development chain the
        // missing file is the next error, which shows the check let it through.
        model_path: dir.join("missing.gguf"),
        model_entry: None,
        model_name: None,
        chain_url,
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        price: Price {
            input_per_1k: 1,
            output_per_1k: 1,
        },
        stake: 1,
        threads: Some(1),
        batches: Default::default(),
        adversary: Some(Adversary::Tamper),
        upstream: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversary_is_refused_outside_development_chains() {
    let dir = tempfile::tempdir().unwrap();
    let url = chain(&dir.path().join("main"), "agora-mainnet").await;
    let setup = cheating_setup(dir.path(), url);
    let err = start(setup, Shutdown::on_signals())
        .await
        .err()
        .expect("refused");
    let msg = chain_text(&err);
    assert!(
        msg.contains("--adversary tamper is refused on chain \"agora-mainnet\""),
        "{msg}"
    );

    let dev = tempfile::tempdir().unwrap();
    let url = chain(&dev.path().join("dev"), agora_types::network::DEV_CHAIN_ID).await;
    let err = start(cheating_setup(dev.path(), url), Shutdown::on_signals())
        .await
        .err()
        .expect("the model is missing");
    let msg = chain_text(&err);
    assert!(!msg.contains("refused"), "{msg}");
    assert!(msg.contains("setting up the adversary"), "{msg}");
}

/// An error and its sources, as `{:#}` of anyhow prints them.
fn chain_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
