//! The blob commands end to end, without a model: a folder added as a
//! collection, seeded with `agora blob serve` and fetched verified into
//! another store as the same tree; and `agora model publish`, which
//! registers a GGUF on chain with what its header says, its owner and
//! royalty, and serves it to peers.

mod common;

use common::Agora;

/// Write a small dataset under `root`; returns (path, bytes) of each file.
fn dataset(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            let bytes: Vec<u8> = (0..(40_000 * i + 3)).map(|b| (b * 7 + i) as u8).collect();
            (format!("split-{}/shard-{i}.bin", i % 2), bytes)
        })
        .collect();
    for (path, bytes) in &files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files
}

#[test]
fn a_folder_added_and_served_is_fetched_verified_as_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let files = dataset(&dir.path().join("data"));
    let (ok, out, err) = common::run(&[
        "blob",
        "add",
        &path("data"),
        "--dir",
        &path("seed"),
        "--tag",
        "dataset",
        "--json",
    ]);
    assert!(ok, "{out} {err}");
    let added: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = added["id"].as_str().unwrap().to_string();
    assert_eq!(added["files"].as_array().unwrap().len(), files.len());

    let seed = Agora::start(&[
        "blob",
        "serve",
        "--dir",
        &path("seed"),
        "--http",
        "127.0.0.1:0",
    ]);
    let peer = seed.value("blobs");
    let (ok, out, err) = common::run(&[
        "blob",
        "get",
        &id,
        "--peer",
        &peer,
        "--dir",
        &path("copy"),
        "--out",
        &path("out"),
        "--json",
    ]);
    assert!(ok, "{out} {err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["files"], added["files"]);
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let manifest = added["size"].as_u64().unwrap();
    assert_eq!(got["from"][0]["bytes"].as_u64().unwrap(), total + manifest);
    for (p, bytes) in &files {
        assert_eq!(
            &std::fs::read(dir.path().join("out").join(p)).unwrap(),
            bytes,
            "{p}"
        );
    }

    // A blob the peer does not hold is a clear error, and nothing is written.
    let (ok, _, err) = common::run(&[
        "blob",
        "get",
        &"ab".repeat(32),
        "--peer",
        &peer,
        "--dir",
        &path("copy"),
        "--out",
        &path("nothing"),
    ]);
    assert!(!ok);
    assert!(err.contains("holds"), "{err}");
    assert!(!dir.path().join("nothing").exists());
}

/// A GGUF header (v3, no tensors) with these string or u32 pairs, then `tail`.
fn gguf(pairs: &[(&str, Result<&str, u32>)], tail: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((pairs.len() as u64).to_le_bytes());
    for (key, value) in pairs {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        match value {
            Ok(text) => {
                out.extend(8u32.to_le_bytes());
                out.extend((text.len() as u64).to_le_bytes());
                out.extend(text.as_bytes());
            }
            Err(n) => {
                out.extend(4u32.to_le_bytes());
                out.extend(n.to_le_bytes());
            }
        }
    }
    out.extend(tail);
    out
}

#[test]
fn a_published_model_is_registered_from_its_header_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let node = common::fast_node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let faucet = path("node/faucet.key");
    let pairs = [
        ("general.architecture", Ok("testarch")),
        ("general.file_type", Err(15)),
        ("general.license", Ok("MIT")),
        ("tokenizer.ggml.model", Ok("gpt2")),
    ];
    let weights: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.path().join("Tiny.gguf"), gguf(&pairs, &weights)).unwrap();
    let file = dir.path().join("Tiny.gguf");
    let id = agora_models::model_id(&file).unwrap();
    let meta = agora_models::read_meta(&file).unwrap();

    let seed = Agora::start(&[
        "model",
        "publish",
        &path("Tiny.gguf"),
        "--key",
        &faucet,
        "--rpc",
        &rpc,
        "--dir",
        &path("published"),
        "--royalty-ppm",
        "1000",
        "--serve",
        "127.0.0.1:0",
    ]);
    let status = common::status(&rpc);
    let entry = status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id.to_hex())
        .unwrap_or_else(|| panic!("not registered: {status}"));
    let owner = agora_devnet::keys::load(&dir.path().join("node/faucet.key"))
        .unwrap()
        .account();
    assert_eq!(entry["name"], "tiny");
    assert_eq!(entry["architecture"], "testarch");
    assert_eq!(entry["quantization"], "Q4_K_M");
    assert_eq!(entry["license"], "MIT");
    assert_eq!(entry["size_bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(entry["owner"], owner.to_hex());
    assert_eq!(entry["royalty_ppm"], 1000);
    assert_eq!(entry["tokenizer_hash"], meta.tokenizer_hash.to_hex());
    assert_ne!(meta.tokenizer_hash, agora_types::Hash32::default());

    // Peers fetch it from the publisher, verified.
    let (ok, out, err) = common::run(&[
        "blob",
        "get",
        &id.to_hex(),
        "--peer",
        &seed.value("blobs"),
        "--dir",
        &path("peer"),
        "--out",
        &path("fetched.gguf"),
        "--json",
    ]);
    assert!(ok, "{out} {err}");
    assert_eq!(
        std::fs::read(path("fetched.gguf")).unwrap(),
        std::fs::read(&file).unwrap()
    );

    // The store is the serving publisher's while it runs.
    let (ok, _, err) = common::run(&[
        "model",
        "publish",
        &path("Tiny.gguf"),
        "--key",
        &faucet,
        "--rpc",
        &rpc,
        "--dir",
        &path("published"),
    ]);
    assert!(!ok);
    assert!(err.contains("open in another process"), "{err}");
    // Publishing again is no new registration; a name taken by another file
    // and a file that is not GGUF are refused with the reason.
    let (ok, out, err) = common::run(&[
        "model",
        "publish",
        &path("Tiny.gguf"),
        "--key",
        &faucet,
        "--rpc",
        &rpc,
        "--dir",
        &path("again"),
        "--json",
    ]);
    assert!(ok, "{out} {err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["registered_at"], serde_json::Value::Null);
    std::fs::write(
        dir.path().join("other.gguf"),
        gguf(&pairs, b"other weights"),
    )
    .unwrap();
    let (ok, _, err) = common::run(&[
        "model",
        "publish",
        &path("other.gguf"),
        "--name",
        "tiny",
        "--key",
        &faucet,
        "--rpc",
        &rpc,
        "--dir",
        &path("again"),
    ]);
    assert!(!ok);
    assert!(err.contains("choose another with --name"), "{err}");
    std::fs::write(dir.path().join("notes.gguf"), b"not a model at all").unwrap();
    let (ok, _, err) = common::run(&[
        "model",
        "publish",
        &path("notes.gguf"),
        "--key",
        &faucet,
        "--rpc",
        &rpc,
        "--dir",
        &path("again"),
    ]);
    assert!(!ok);
    assert!(err.contains("GGUF"), "{err}");
}
