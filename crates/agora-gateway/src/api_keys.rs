//! Client API keys. A gateway that pays providers from its own key must not
//! let whoever reaches its port spend that money: with keys configured, the
//! completion endpoints need `Authorization: Bearer KEY` for one of them.
//! Only BLAKE3 hashes of the keys are held in memory.

use std::collections::HashSet;
use std::path::Path;

use agora_types::Hash32;
use axum::http::HeaderMap;

use crate::ApiError;

/// Domain of the key hashes.
const KEY_DOMAIN: &str = "agora 2026 gateway api key v1";
/// Prefix of generated keys, so they are recognisable in configs and leaks.
pub const KEY_PREFIX: &str = "sk-agora-";

/// The keys a gateway accepts.
#[derive(Clone)]
pub struct ApiKeys {
    hashes: HashSet<Hash32>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.hashes.len())
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The file cannot be read.
    #[error("cannot read API key file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file holds no key.
    #[error("API key file {0} holds no key (one key per line)")]
    Empty(String),
}

fn hash(key: &str) -> Hash32 {
    Hash32::digest_in(KEY_DOMAIN, key.as_bytes())
}

impl ApiKeys {
    /// Accept exactly `keys` (blank entries are ignored).
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Self {
        let hashes = keys
            .into_iter()
            .map(|k| k.as_ref().trim().to_string())
            .filter(|k| !k.is_empty())
            .map(|k| hash(&k))
            .collect();
        ApiKeys { hashes }
    }

    /// Keys from a file, one per line; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Self, ApiKeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| ApiKeyError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let keys = Self::new(text.lines().map(str::trim).filter(|l| !l.starts_with('#')));
        if keys.hashes.is_empty() {
            return Err(ApiKeyError::Empty(path.display().to_string()));
        }
        Ok(keys)
    }

    /// The keys at `path`, writing a file with one fresh key first if there is
    /// none; also returns the file's first key (what a devnet prints).
    pub fn load_or_create(path: &Path) -> Result<(Self, String), ApiKeyError> {
        let write_error = |e: std::io::Error| ApiKeyError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if !path.exists() {
            let key = Self::generate();
            std::fs::write(path, format!("# client API keys, one per line\n{key}\n"))
                .map_err(write_error)?;
        }
        let keys = Self::load(path)?;
        let text = std::fs::read_to_string(path).map_err(write_error)?;
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| ApiKeyError::Empty(path.display().to_string()))?
            .to_string();
        Ok((keys, first))
    }

    /// A fresh random key (`sk-agora-` and 64 hex characters).
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        format!("{KEY_PREFIX}{}", hex::encode(bytes))
    }

    /// Let the request through if it carries one of the keys (`Authorization:
    /// Bearer KEY`, as OpenAI clients send it); 401 in OpenAI's shape otherwise.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        match presented {
            Some(key) if self.hashes.contains(&hash(key)) => Ok(()),
            Some(_) => Err(ApiError::unauthorized(
                "Incorrect API key provided. This gateway pays providers on your behalf and serves only the keys it issued.",
            )),
            None => Err(ApiError::unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn only_issued_keys_pass() {
        let key = ApiKeys::generate();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        let keys = ApiKeys::new([key.as_str(), ""]);
        assert!(keys.check(&bearer(&format!("Bearer {key}"))).is_ok());
        for bad in [
            format!("Bearer {key}x"),
            format!("Basic {key}"),
            "Bearer ".to_string(),
            key.clone(),
        ] {
            let e = keys.check(&bearer(&bad)).unwrap_err();
            assert_eq!(e.status, 401, "{bad}");
            assert!(!e.message.contains(&key), "the key is never echoed");
        }
        assert_eq!(keys.check(&HeaderMap::new()).unwrap_err().status, 401);
        assert!(!format!("{keys:?}").contains(&key));
    }

    #[test]
    fn key_files_skip_comments_and_refuse_to_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# clients\n\nsk-agora-one\n  sk-agora-two  \n").unwrap();
        let keys = ApiKeys::load(&path).unwrap();
        assert!(keys.check(&bearer("Bearer sk-agora-two")).is_ok());
        assert!(keys.check(&bearer("Bearer # clients")).is_err());
        let (made, first) = ApiKeys::load_or_create(&dir.path().join("new")).unwrap();
        assert!(made.check(&bearer(&format!("Bearer {first}"))).is_ok());
        let (again, same) = ApiKeys::load_or_create(&dir.path().join("new")).unwrap();
        assert_eq!(same, first, "an existing file is kept");
        assert!(again.check(&bearer(&format!("Bearer {first}"))).is_ok());
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(ApiKeys::load(&path), Err(ApiKeyError::Empty(_))));
        assert!(matches!(
            ApiKeys::load(&dir.path().join("missing")),
            Err(ApiKeyError::Read { .. })
        ));
    }
}
