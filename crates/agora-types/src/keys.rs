//! ed25519 account keys and signatures (ed25519-dalek), with hex text forms.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a key, signature or key file is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Text that is not the right number of hex characters.
    #[error("expected {expected} hex characters, got {got:?}")]
    BadHex {
        /// How many hex characters were expected.
        expected: usize,
        /// What was given.
        got: String,
    },
    /// Text that is not a secret key. Unlike [`KeyError::BadHex`] it never
    /// repeats the text: a malformed key file must not end up in a log.
    #[error("expected a secret key of {expected} hex characters, got {got_len} characters")]
    BadSecretKey {
        /// How many hex characters were expected.
        expected: usize,
        /// How many characters were given.
        got_len: usize,
    },
    /// 32 bytes that are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key")]
    InvalidPublicKey,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
}

/// An account is named by its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct AccountId(pub [u8; 32]);

/// A detached ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// A signing key; the only place secret key material lives.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Self {
        Keypair(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte secret seed, for storing the key.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The account this key controls.
    pub fn account(&self) -> AccountId {
        AccountId(self.0.verifying_key().to_bytes())
    }

    /// Sign a message.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl AccountId {
    /// Check that `sig` is this account's signature over `msg` (strict ed25519
    /// verification: rejects malleable and small-order forms).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), KeyError> {
        let key = verifying_key(&self.0)?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(msg, &sig)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Most decompressed keys [`verifying_key`] keeps; past it the cache starts over.
const KEY_CACHE_CAPACITY: usize = 65_536;

/// Decompressed public keys by their 32 bytes. Decompression is a pure
/// function of the bytes, so the cache never changes a verification's result;
/// it saves the point decompression (about a tenth of a strict verification)
/// for accounts that sign again. Invalid keys are not cached.
fn key_cache() -> &'static Mutex<HashMap<[u8; 32], VerifyingKey>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], VerifyingKey>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    // A poisoned lock only means another thread panicked between a lookup and
    // an insert of whole values: the map is still consistent.
    if let Some(key) = key_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(bytes)
    {
        return Ok(*key);
    }
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey)?;
    let mut cache = key_cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= KEY_CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(*bytes, key);
    Ok(key)
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| KeyError::BadHex {
        expected: 2 * N,
        // Public text only (ids, signatures); long input is cut.
        got: s.chars().take(2 * N + 8).collect(),
    })?;
    Ok(out)
}

impl FromStr for AccountId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        parse_hex(s).map(AccountId)
    }
}

impl FromStr for Signature {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        parse_hex(s).map(Signature)
    }
}

impl FromStr for Keypair {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        parse_hex(s)
            .map(Keypair::from_seed)
            .map_err(|_| KeyError::BadSecretKey {
                expected: 64,
                got_len: s.chars().count(),
            })
    }
}

macro_rules! hex_text {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), hex::encode(self.0))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <String as Deserialize>::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_text!(AccountId);
hex_text!(Signature);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let k = Keypair::generate();
        let sig = k.sign(b"msg");
        assert_eq!(k.account().verify(b"msg", &sig), Ok(()));
        assert_eq!(
            k.account().verify(b"msh", &sig),
            Err(KeyError::BadSignature)
        );
        let other = Keypair::generate();
        assert_eq!(
            other.account().verify(b"msg", &sig),
            Err(KeyError::BadSignature)
        );
        let mut bad = sig;
        bad.0[3] ^= 1;
        assert_eq!(
            k.account().verify(b"msg", &bad),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn cached_key_still_rejects_forgeries() {
        let k = Keypair::generate();
        let sig = k.sign(b"msg");
        // First use decompresses and caches the key; every later check hits the cache.
        assert_eq!(k.account().verify(b"msg", &sig), Ok(()));
        assert!(key_cache().lock().unwrap().contains_key(&k.account().0));
        let mut forged = sig;
        forged.0[40] ^= 0x10;
        assert_eq!(
            k.account().verify(b"msg", &forged),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            k.account().verify(b"other", &sig),
            Err(KeyError::BadSignature)
        );
        // A signature by another key, presented under the cached key.
        let other = Keypair::generate().sign(b"msg");
        assert_eq!(
            k.account().verify(b"msg", &other),
            Err(KeyError::BadSignature)
        );
        assert_eq!(k.account().verify(b"msg", &sig), Ok(()));
    }

    #[test]
    fn invalid_keys_are_refused_and_not_cached() {
        // y = 2 is not the y-coordinate of a curve point.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let bad = AccountId(bytes);
        let sig = Keypair::generate().sign(b"msg");
        assert_eq!(bad.verify(b"msg", &sig), Err(KeyError::InvalidPublicKey));
        assert_eq!(bad.verify(b"msg", &sig), Err(KeyError::InvalidPublicKey));
        assert!(!key_cache().lock().unwrap().contains_key(&bytes));
    }

    #[test]
    fn seed_round_trip() {
        let k = Keypair::generate();
        let back: Keypair = hex::encode(k.seed()).parse().unwrap();
        assert_eq!(back.account(), k.account());
        let acc: AccountId = k.account().to_string().parse().unwrap();
        assert_eq!(acc, k.account());
    }

    /// Attack (issue 13, #14): a key file with one stray character must not
    /// have its secret echoed into an error message (and so into logs).
    #[test]
    fn a_malformed_secret_key_is_never_echoed() {
        let secret = hex::encode(Keypair::generate().seed());
        for bad in [
            format!("{secret}x"),
            secret[..63].to_string(),
            format!("{secret}{secret}"),
        ] {
            let Err(e) = bad.parse::<Keypair>() else {
                panic!("{} characters parsed as a key", bad.len());
            };
            let e = e.to_string();
            assert!(!e.contains(&secret[..16]), "secret echoed: {e}");
            assert!(e.contains("secret key"), "{e}");
        }
        // Public ids are echoed, but cut.
        let e = "ab"
            .repeat(10_000)
            .parse::<AccountId>()
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{} bytes", e.len());
    }
}
