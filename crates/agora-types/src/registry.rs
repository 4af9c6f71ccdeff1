//! On-chain registry records: models (content-addressed) and providers.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{AccountId, Amount, Hash32};

/// A model is identified by the BLAKE3 hash of its GGUF file.
pub type ModelId = Hash32;

/// Registry entry describing one model file.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ModelEntry {
    /// BLAKE3 of the GGUF file.
    pub id: ModelId,
    /// Human name clients use in the API, e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// Architecture from the GGUF metadata, e.g. `llama`.
    pub architecture: String,
    /// Quantization, e.g. `Q4_1`.
    pub quantization: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Licence identifier, e.g. `Apache-2.0`.
    pub license: String,
    /// Who receives the model's royalties. A `RegisterModel` transaction must
    /// name its own sender here (the ledger refuses any other account).
    #[serde(default = "no_owner")]
    pub owner: AccountId,
    /// Share of every settled channel payment for this model paid to `owner`,
    /// in parts per million (at most the chain's `max_royalty_ppm`).
    #[serde(default)]
    pub royalty_ppm: u32,
    /// Hash of the GGUF's tokenizer metadata (`agora_models::gguf`): clients
    /// and verifiers tell by it which models tokenize alike. Zero where
    /// unknown (entries registered before it existed).
    #[serde(default)]
    pub tokenizer_hash: Hash32,
}

/// The all-zero account: the owner of genesis models nobody claimed (they
/// carry no royalty, so nothing is ever paid to it).
pub fn no_owner() -> AccountId {
    AccountId([0; 32])
}

/// Parts per million: the unit of royalty shares.
pub const ROYALTY_PPM_SCALE: u32 = 1_000_000;

/// The royalty on a payment of `amount`: `floor(amount × royalty_ppm / 10⁶)`,
/// so the payee keeps the rounding remainder and the royalty never exceeds
/// `amount` (shares above 100% are clamped).
pub fn royalty_of(amount: Amount, royalty_ppm: u32) -> Amount {
    let ppm = royalty_ppm.min(ROYALTY_PPM_SCALE);
    // amount × ppm / 10⁶ ≤ amount, so the quotient fits back in 64 bits.
    (u128::from(amount) * u128::from(ppm) / u128::from(ROYALTY_PPM_SCALE)) as Amount
}

/// Price of a job in base units per 1,000 tokens.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Price {
    /// Per 1,000 prompt tokens.
    pub input_per_1k: Amount,
    /// Per 1,000 generated tokens.
    pub output_per_1k: Amount,
}

impl Price {
    /// Cost of a job, rounded up to whole base units so a provider is never underpaid.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Amount {
        let milli = (u128::from(self.input_per_1k) * u128::from(prompt_tokens))
            .saturating_add(u128::from(self.output_per_1k) * u128::from(completion_tokens));
        u64::try_from(milli.div_ceil(1000)).unwrap_or(u64::MAX)
    }
}

/// A registered provider as the chain records it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's account (its signing key).
    pub id: AccountId,
    /// Base URL where it serves jobs, e.g. `http://10.0.0.5:8081`.
    pub endpoint: String,
    /// Models it serves; every one is in the model registry.
    pub models: Vec<ModelId>,
    /// What it charges.
    pub price: Price,
    /// Collateral locked while registered; what slashing takes.
    pub stake: Amount,
    /// Height of the block that registered it.
    pub registered_at: u64,
    /// Whether its jobs replay exactly (agora's own engine); `false` for a
    /// provider forwarding to an upstream server, whose jobs validators
    /// judge statistically and never by exact replay.
    #[serde(default = "replayable_default")]
    pub replayable: bool,
}

pub(crate) fn replayable_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_and_never_overflows() {
        let p = Price {
            input_per_1k: 10,
            output_per_1k: 30,
        };
        assert_eq!(p.cost(1000, 1000), 40);
        assert_eq!(p.cost(1, 0), 1);
        assert_eq!(p.cost(0, 0), 0);
        let huge = Price {
            input_per_1k: u64::MAX,
            output_per_1k: u64::MAX,
        };
        assert_eq!(huge.cost(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn royalty_rounds_down_and_never_exceeds_the_payment() {
        assert_eq!(royalty_of(1_000, 200_000), 200);
        assert_eq!(royalty_of(9, 150_000), 1, "1.35 rounds down");
        assert_eq!(royalty_of(4, 200_000), 0);
        assert_eq!(royalty_of(777, 0), 0);
        assert_eq!(royalty_of(777, ROYALTY_PPM_SCALE), 777);
        assert_eq!(royalty_of(777, u32::MAX), 777, "shares above 100% clamp");
        assert_eq!(royalty_of(u64::MAX, 500_000), u64::MAX / 2);
    }
}
