//! Key files: a hex ed25519 seed, created on first start with owner-only permissions.

use std::path::Path;

use agora_tasks::{Context, Failure};
use agora_types::Keypair;

/// Load the key at `path`, creating a fresh one if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Keypair, Failure> {
    if path.exists() {
        return load(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = Keypair::generate();
    write_private(path, &hex::encode(key.seed()))?;
    Ok(key)
}

/// Load an existing key file.
pub fn load(path: &Path) -> Result<Keypair, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    text.parse()
        .with_context(|| format!("key file {} is not a 64-hex-character seed", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    agora_tasks::write_private(path, text.as_bytes())
        .with_context(|| format!("creating key file {}", path.display()))
}
