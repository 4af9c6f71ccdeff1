//! Crash safety: SIGKILL a devnet and restart it on the same data directory;
//! nothing committed is lost.

mod common;

use std::time::Duration;

use agora_types::Keypair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_kill_9_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();

    // SIGTERM: a clean exit, promptly.
    let mut devnet = common::devnet(dir.path());
    let pid = devnet.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = devnet.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "devnet did not exit within 30 s of SIGTERM"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "devnet exited with {status} after SIGTERM"
    );

    let mut devnet = common::devnet(dir.path());
    let rpc = devnet.value("chain RPC");
    let recipient = Keypair::generate().account();
    common::transfer(&rpc, &dir.path().join("faucet.key"), &recipient, 12345);
    let recipient = recipient.to_hex();
    let account_url = format!("{rpc}/account/{recipient}");
    let balance = |v: serde_json::Value| v["balance"].as_u64().unwrap();
    let before: serde_json::Value = reqwest::get(&account_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(balance(before), 12345);
    let height_before = common::status(&rpc)["height"].as_u64().unwrap();

    devnet.kill();
    let devnet = common::devnet(dir.path());
    let rpc = devnet.value("chain RPC");
    let status = common::status(&rpc);
    assert!(
        status["height"].as_u64().unwrap() >= height_before,
        "{status}"
    );
    let after: serde_json::Value = reqwest::get(format!("{rpc}/account/{recipient}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(balance(after), 12345);
    // The chat provider, the embedding provider and the data node, each
    // registered once across the restart.
    assert_eq!(status["providers"].as_array().unwrap().len(), 3, "{status}");
}
