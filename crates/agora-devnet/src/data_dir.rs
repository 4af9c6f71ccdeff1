//! Where each role keeps its data by default.

use std::path::PathBuf;

/// `$XDG_DATA_HOME/agora/NAME`, else `$HOME/.local/share/agora/NAME`.
pub fn default_data_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("agora").join(name)
}
