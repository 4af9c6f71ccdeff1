//! Signed transcript requests: a batch job's transcript (its prompt and
//! output) goes only to the validators the chain drew for it (its auditor,
//! or a member of the committee re-checking it). The requester signs the
//! chain, the batch root, the leaf index and the time; the provider checks
//! the signature, the age and, against the chain, the assignment.

use borsh::BorshSerialize;

use crate::{codec, AccountId, Hash32, Keypair, Signature};

/// Header carrying a [`TranscriptAuth`] on `GET /v1/batches/{root}/{index}`.
pub const TRANSCRIPT_AUTH_HEADER: &str = "x-agora-auditor";
/// Domain of the signed request bytes.
const REQUEST_DOMAIN: &str = "agora 2026 transcript request v1";
/// How far a request's time may be from the provider's clock.
pub const MAX_REQUEST_SKEW_MS: u64 = 5 * 60 * 1000;

/// Who asks for which job, when, and their signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptAuth {
    /// The validator asking.
    pub auditor: AccountId,
    /// When it asked, milliseconds since the Unix epoch.
    pub issued_ms: u64,
    /// Its signature over [`request_bytes`].
    pub signature: Signature,
}

/// Why a transcript request is refused before the chain is asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header is not `ACCOUNT:MILLIS:SIGNATURE` in hex and decimal.
    #[error("malformed {TRANSCRIPT_AUTH_HEADER} header: {0}")]
    Malformed(String),
    /// The signature does not verify for this chain, root and index.
    #[error("the request signature does not verify")]
    BadSignature,
    /// The request is older or newer than [`MAX_REQUEST_SKEW_MS`].
    #[error("the request was signed at {issued_ms}, too far from now ({now_ms})")]
    Stale {
        /// The request's time.
        issued_ms: u64,
        /// The provider's time.
        now_ms: u64,
    },
}

/// The bytes a requester signs.
pub fn request_bytes(chain_id: &str, root: &Hash32, index: u64, issued_ms: u64) -> Vec<u8> {
    #[derive(BorshSerialize)]
    struct Request<'a> {
        chain_id: &'a str,
        root: &'a Hash32,
        index: u64,
        issued_ms: u64,
    }
    let request = Request {
        chain_id,
        root,
        index,
        issued_ms,
    };
    Hash32::digest_in(REQUEST_DOMAIN, &codec::encode(&request))
        .0
        .to_vec()
}

impl TranscriptAuth {
    /// `key` asks for job `index` of the batch with `root` on `chain_id` at `issued_ms`.
    pub fn sign(key: &Keypair, chain_id: &str, root: &Hash32, index: u64, issued_ms: u64) -> Self {
        TranscriptAuth {
            auditor: key.account(),
            issued_ms,
            signature: key.sign(&request_bytes(chain_id, root, index, issued_ms)),
        }
    }

    /// The header value: `ACCOUNT:MILLIS:SIGNATURE`.
    pub fn to_header(&self) -> String {
        format!(
            "{}:{}:{}",
            self.auditor.to_hex(),
            self.issued_ms,
            hex::encode(self.signature.0)
        )
    }

    /// Parse a header value made by [`Self::to_header`].
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        let mut parts = value.trim().split(':');
        let (Some(account), Some(ms), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("expected three fields".into()));
        };
        Ok(TranscriptAuth {
            auditor: account
                .parse()
                .map_err(|e| AuthError::Malformed(format!("account: {e}")))?,
            issued_ms: ms
                .parse()
                .map_err(|e| AuthError::Malformed(format!("time: {e}")))?,
            signature: sig
                .parse()
                .map_err(|e| AuthError::Malformed(format!("signature: {e}")))?,
        })
    }

    /// Check the signature for this chain, root and index, and the age
    /// against `now_ms`; returns who asked.
    pub fn verify(
        &self,
        chain_id: &str,
        root: &Hash32,
        index: u64,
        now_ms: u64,
    ) -> Result<AccountId, AuthError> {
        if self.issued_ms.abs_diff(now_ms) > MAX_REQUEST_SKEW_MS {
            return Err(AuthError::Stale {
                issued_ms: self.issued_ms,
                now_ms,
            });
        }
        self.auditor
            .verify(
                &request_bytes(chain_id, root, index, self.issued_ms),
                &self.signature,
            )
            .map_err(|_| AuthError::BadSignature)?;
        Ok(self.auditor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_only_for_its_own_chain_root_index_and_time() {
        let key = Keypair::from_seed([4; 32]);
        let root = Hash32::digest(b"root");
        let auth = TranscriptAuth::sign(&key, "c", &root, 3, 1_000_000);
        let parsed = TranscriptAuth::from_header(&auth.to_header()).unwrap();
        assert_eq!(parsed, auth);
        assert_eq!(parsed.verify("c", &root, 3, 1_000_500), Ok(key.account()));
        assert_eq!(
            parsed.verify("other", &root, 3, 1_000_000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify("c", &root, 4, 1_000_000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify("c", &Hash32::digest(b"x"), 3, 1_000_000),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            parsed.verify("c", &root, 3, 1_000_000 + MAX_REQUEST_SKEW_MS + 1),
            Err(AuthError::Stale { .. })
        ));
        // Claiming another account with this signature fails.
        let mut forged = parsed.clone();
        forged.auditor = Keypair::from_seed([5; 32]).account();
        assert_eq!(
            forged.verify("c", &root, 3, 1_000_000),
            Err(AuthError::BadSignature)
        );
        for bad in [
            "",
            "a:b",
            "zz:1:ff",
            &format!("{}:x:00", key.account().to_hex()),
        ] {
            assert!(matches!(
                TranscriptAuth::from_header(bad),
                Err(AuthError::Malformed(_))
            ));
        }
    }
}
