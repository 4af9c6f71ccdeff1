//! The localnet's validator processes: spawning one with its log, the
//! `nodes.json` that lists them, and stopping them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use agora_tasks::{Context, Failure};
use serde_json::json;

use super::Validator;

/// Start `cmd` with stdout and stderr appended to `log`.
pub(super) fn spawn_logged(cmd: &[String], log: &Path) -> Result<Child, Failure> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {}", cmd.join(" ")))
}

/// A command line a POSIX shell runs as written.
fn shell_line(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-,:=".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write `DIR/nodes.json`: per validator its pid, RPC URL and restart command.
pub(super) fn write_nodes_json(dir: &Path, validators: &[Validator]) -> Result<(), Failure> {
    let list: Vec<_> = validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "index": i,
                "pid": v.child.id(),
                "rpc": v.rpc,
                "p2p": v.p2p,
                "consensus_key": v.consensus_key,
                "cmd": shell_line(&v.cmd),
                "log": v.log.display().to_string(),
            })
        })
        .collect();
    let path = dir.join("nodes.json");
    let tmp = dir.join("nodes.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&list).map_err(Failure::other)?,
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Ask a validator to stop (SIGTERM), then wait for it.
pub(super) fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id().to_string();
    let asked = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success());
    if !asked {
        let _ = child.kill();
    }
    let _ = child.wait();
}
