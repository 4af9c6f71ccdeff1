//! Signed access to a job on a data node: the buyer runs its job and reads
//! its result, a drawn validator reads the job's inputs, and nobody else
//! does either. A grant is a signature over the host, the job, what it is
//! for and when it expires, so it is useless on another host, job or
//! purpose, and stops working after [`ACCESS_TTL_MS`].

use agora_types::{codec, AccountId, Hash32, Keypair, Signature};

/// Domain of the bytes an access grant signs.
const ACCESS_DOMAIN: &str = "agora 2026 data access v1";

/// Longest a grant may be valid for, in milliseconds.
pub const ACCESS_TTL_MS: u64 = 5 * 60 * 1_000;

/// Header carrying the requesting account (hex).
pub(crate) const ACCOUNT_HEADER: &str = "x-agora-account";
/// Header carrying the grant's expiry (Unix milliseconds).
pub(crate) const EXPIRES_HEADER: &str = "x-agora-expires";
/// Header carrying the signature (hex).
pub(crate) const SIGNATURE_HEADER: &str = "x-agora-signature";

/// What a grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Run the job (the buyer).
    Run,
    /// Read the job's kept result (the buyer).
    Result,
    /// Read the job's inputs to re-run it (a drawn validator).
    Audit,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Result => "result",
            Self::Audit => "audit",
        }
    }
}

/// A signed permission to act on one job on one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessGrant {
    /// Who asks.
    pub account: AccountId,
    /// Unix milliseconds after which it is refused.
    pub expires_ms: u64,
    /// `account`'s signature over [`AccessGrant::message`].
    pub signature: Signature,
}

impl AccessGrant {
    /// The bytes signed.
    pub fn message(
        host: &AccountId,
        job: &Hash32,
        purpose: Purpose,
        account: &AccountId,
        expires_ms: u64,
    ) -> Vec<u8> {
        Hash32::digest_in(
            ACCESS_DOMAIN,
            &codec::encode(&(host, job, purpose.tag(), account, expires_ms)),
        )
        .0
        .to_vec()
    }

    /// A grant from `key`, valid until `now_ms + ACCESS_TTL_MS`.
    pub fn sign(
        key: &Keypair,
        host: &AccountId,
        job: &Hash32,
        purpose: Purpose,
        now_ms: u64,
    ) -> Self {
        let expires_ms = now_ms.saturating_add(ACCESS_TTL_MS);
        let account = key.account();
        AccessGrant {
            account,
            expires_ms,
            signature: key.sign(&Self::message(host, job, purpose, &account, expires_ms)),
        }
    }

    /// Check the grant for this host, job and purpose at `now_ms`.
    pub fn verify(
        &self,
        host: &AccountId,
        job: &Hash32,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<(), String> {
        if self.expires_ms < now_ms {
            return Err("the grant has expired".into());
        }
        if self.expires_ms > now_ms.saturating_add(ACCESS_TTL_MS) {
            return Err(format!(
                "a grant may be valid for at most {ACCESS_TTL_MS} ms"
            ));
        }
        self.account
            .verify(
                &Self::message(host, job, purpose, &self.account, self.expires_ms),
                &self.signature,
            )
            .map_err(|_| "the signature does not verify".to_string())
    }

    /// The three headers carrying the grant.
    pub(crate) fn headers(&self) -> [(&'static str, String); 3] {
        [
            (ACCOUNT_HEADER, self.account.to_hex()),
            (EXPIRES_HEADER, self.expires_ms.to_string()),
            (SIGNATURE_HEADER, hex::encode(self.signature.0)),
        ]
    }

    /// Read a grant from request headers.
    pub(crate) fn from_headers(headers: &axum::http::HeaderMap) -> Result<Self, String> {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("missing header {name}"))
        };
        let account = get(ACCOUNT_HEADER)?
            .parse()
            .map_err(|_| format!("{ACCOUNT_HEADER} is not an account"))?;
        let expires_ms = get(EXPIRES_HEADER)?
            .parse()
            .map_err(|_| format!("{EXPIRES_HEADER} is not a number"))?;
        let bytes = hex::decode(get(SIGNATURE_HEADER)?)
            .map_err(|_| format!("{SIGNATURE_HEADER} is not hex"))?;
        let signature = Signature(
            bytes
                .try_into()
                .map_err(|_| format!("{SIGNATURE_HEADER} is not 64 bytes"))?,
        );
        Ok(AccessGrant {
            account,
            expires_ms,
            signature,
        })
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_works_only_for_its_host_job_purpose_and_time() {
        let buyer = Keypair::from_seed([1; 32]);
        let host = Keypair::from_seed([2; 32]).account();
        let job = Hash32([3; 32]);
        let grant = AccessGrant::sign(&buyer, &host, &job, Purpose::Result, 1_000);
        grant.verify(&host, &job, Purpose::Result, 1_000).unwrap();
        assert!(grant.verify(&host, &job, Purpose::Audit, 1_000).is_err());
        assert!(grant
            .verify(&host, &Hash32([4; 32]), Purpose::Result, 1_000)
            .is_err());
        assert!(grant
            .verify(&buyer.account(), &job, Purpose::Result, 1_000)
            .is_err());
        assert!(grant
            .verify(&host, &job, Purpose::Result, 1_001 + ACCESS_TTL_MS)
            .is_err());
        // Claiming another account with one's own signature fails.
        let thief = Keypair::from_seed([5; 32]);
        let mut stolen = AccessGrant::sign(&thief, &host, &job, Purpose::Result, 1_000);
        stolen.account = buyer.account();
        assert!(stolen.verify(&host, &job, Purpose::Result, 1_000).is_err());
        // A grant far in the future is refused: it would be a long-lived token.
        let mut long = grant.clone();
        long.expires_ms += ACCESS_TTL_MS;
        assert!(long.verify(&host, &job, Purpose::Result, 1_000).is_err());
    }
}
