//! The console in a real browser: Debian's headless Chromium, driven by
//! `console/tests/e2e.mjs` (playwright-core, axe-core), against a devnet
//! on the real default model with a provider that tampers with its outputs
//! and every job audited. The script checks that every view loads without
//! console errors, a new block appears within the refresh period, a chat
//! streams and its receipt verifies, the cheater pinned in the playground
//! ends up shown as slashed, the wallet transfers and gets an API key, and
//! axe-core finds no serious violations; it keeps screenshots under
//! `target/tmp/console-artifacts`. Node.js, the console's npm packages
//! (`scripts/build-console.sh`) and Chromium (`scripts/setup.sh`) must be
//! installed: without them this test fails, it never skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_console_passes_its_browser_tests_against_a_devnet() {
    let root = repo_root();
    assert!(
        root.join("console/node_modules/playwright-core").is_dir(),
        "the console's npm packages are missing: run scripts/build-console.sh"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run scripts/setup.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::tampering_devnet(dir.path(), &["--no-embeddings", "--no-data"]);
    let status = common::status(&devnet.value("chain RPC"));
    let cheater = common::provider_at(&status, &devnet.value("cheater"));
    let faucet_seed = std::fs::read_to_string(devnet.value("faucet key")).unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-artifacts");
    // Only this run's screenshots may satisfy the check below.
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .arg(root.join("console/tests/e2e.mjs"))
        .env("CONSOLE_URL", devnet.value("console"))
        .env("API_KEY", devnet.value("api key"))
        .env("CHEATER", &cheater)
        .env("FAUCET_SEED", faucet_seed.trim())
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser tests failed:\n{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for view in ["explorer", "playground", "wallet"] {
        let shots = std::fs::read_dir(&artifacts)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(view))
            .count();
        assert!(
            shots > 0,
            "no screenshot of {view} in {}",
            artifacts.display()
        );
    }
}
