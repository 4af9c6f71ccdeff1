//! What an account has earned, by source: the figures `agora status` and
//! `GET /account/{id}` report so operators can reconcile their balances.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Cumulative earnings of one account since genesis, in base units.
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
pub struct Earnings {
    /// Paid to it as a provider by channel settlements (after royalties).
    pub channels: u128,
    /// Paid to it as a model owner: royalties on other channels' settlements.
    pub royalties: u128,
    /// Paid to it out of the emission pool by the reward distribution.
    pub emissions: u128,
    /// Paid to it by data jobs: as a host for fuel, as a dataset or an algorithm owner per run.
    #[serde(default)]
    pub data: u128,
}

impl Earnings {
    /// Everything earned, all sources together.
    pub fn total(&self) -> u128 {
        self.channels
            .saturating_add(self.royalties)
            .saturating_add(self.emissions)
            .saturating_add(self.data)
    }
}
