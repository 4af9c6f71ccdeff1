//! `--log-format json` (or `AGORA_LOG_FORMAT=json`): every log line on
//! stderr is one JSON object; the default stays human-readable text.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Run `agora node` until it is ready, stop it with SIGTERM (it logs
/// "shutting down" at info level), and return its stderr.
fn node_logs(dir: &std::path::Path, extra: &[&str], env: Option<(&str, &str)>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command
        .args([
            "node",
            "--data-dir",
            dir.to_str().unwrap(),
            "--rpc",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("AGORA_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((k, v)) = env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn agora");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("ready") {
            break;
        }
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    stderr
}

fn shutdown_line(logs: &str) -> Option<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "shutting down")
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = node_logs(&dir.path().join("a"), &["--log-format", "json"], None);
    let line = shutdown_line(&json).unwrap_or_else(|| panic!("no JSON shutdown line in {json}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(
        line["timestamp"].is_string() && line["target"].is_string(),
        "{line}"
    );
    for l in json.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }

    let by_env = node_logs(
        &dir.path().join("b"),
        &[],
        Some(("AGORA_LOG_FORMAT", "json")),
    );
    assert!(shutdown_line(&by_env).is_some(), "{by_env}");

    let text = node_logs(&dir.path().join("c"), &[], None);
    assert!(text.contains("shutting down"), "{text}");
    assert!(shutdown_line(&text).is_none(), "{text}");
}
