//! API key secrets: how they are made, hashed for storage and named in
//! public. Only BLAKE3 hashes of secrets are ever stored or held.

use agora_types::Hash32;

/// Domain of the key hashes (unchanged since keys were a flat file, so old keys still hash the same).
const KEY_DOMAIN: &str = "agora 2026 gateway api key v1";
/// Prefix of generated keys, so they are recognisable in configs and leaks.
pub const KEY_PREFIX: &str = "sk-agora-";

/// A fresh random key (`sk-agora-` and 64 hex characters).
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored hash of a key's secret.
pub fn hash(secret: &str) -> Hash32 {
    Hash32::digest_in(KEY_DOMAIN, secret.trim().as_bytes())
}

/// A key's public id (`key_` and 12 hex characters of its hash): safe to
/// show in lists, logs and metrics, useless for spending.
pub fn public_id(hash: &Hash32) -> String {
    format!("key_{}", hex::encode(&hash.0[..6]))
}

/// The key an `Authorization` header value carries (`Bearer KEY`, as OpenAI clients send it).
pub fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed_under_a_pinned_domain() {
        let a = generate();
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_ne!(a, generate());
        // Python: blake3.blake3(b"sk-agora-x", derive_key_context="agora 2026 gateway api key v1").hexdigest()
        assert_eq!(
            hash("sk-agora-x").to_hex(),
            "17de350ce824869cf87c54be943b3fc7262898f3a6a6167cbea10d7e74d6e55d"
        );
        assert_eq!(public_id(&hash("sk-agora-x")), "key_17de350ce824");
        assert_eq!(bearer("Bearer  k "), Some("k"));
        assert_eq!(bearer("Basic k"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
