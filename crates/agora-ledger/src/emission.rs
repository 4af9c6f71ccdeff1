//! Token issuance: a fixed cap and a per-block emission that halves each time
//! issuance crosses cap·(1 − 2⁻ᵏ) (half the cap, three quarters, ...), as
//! Bitcoin and Bittensor do. Emission accrues to a pool that the per-tempo
//! reward distribution pays out.

use agora_types::{Amount, Hash32};

use crate::State;

/// The emission for the next block when `issued` base units exist in total:
/// `initial` halved once per threshold crossed, never past `cap`.
pub fn block_emission(issued: u128, cap: Amount, initial: Amount) -> Amount {
    let cap = u128::from(cap);
    if issued >= cap || initial == 0 {
        return 0;
    }
    let mut halvings = 0u32;
    // Threshold k: cap - cap / 2^k (k = 1: half the cap, k = 2: three quarters, ...).
    while halvings < 64 && issued >= cap - (cap >> (halvings + 1)) {
        halvings += 1;
    }
    let halved = if halvings >= 64 {
        0
    } else {
        initial >> halvings
    };
    let room = cap - issued;
    u128::from(halved).min(room) as Amount
}

impl State {
    /// Everything ever issued: what exists now plus what slashing burned.
    pub fn issued(&self) -> u128 {
        self.total_supply() + self.burned
    }

    /// What happens at the start of block `height`, before its transactions:
    /// matured unbonding stake returns, the block's emission is minted, and
    /// at an epoch's first block the pool is paid out by revealed weights.
    /// `draw_source` is the header's
    /// [`draw_source`](agora_types::BlockHeader::draw_source).
    pub(crate) fn begin_block(&mut self, height: agora_types::Height, draw_source: Hash32) {
        self.release_unbonded(height);
        self.mint_emission();
        self.prune_audits(height);
        self.prune_agent_payments(height);
        self.draw_pending(height, &draw_source);
        self.distribute_rewards(height);
        self.maybe_elect_committee(height);
    }

    /// Mint this block's emission into the pool.
    fn mint_emission(&mut self) {
        let amount = block_emission(
            self.issued(),
            self.params.supply_cap,
            self.params.emission_per_block,
        );
        self.emission_pool = self.emission_pool.saturating_add(amount);
        self.emitted = self.emitted.saturating_add(u128::from(amount));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_at_each_threshold_and_stops_at_the_cap() {
        let cap: Amount = 21_000_000;
        let big = u128::from(cap);
        assert_eq!(block_emission(0, cap, 1_000), 1_000);
        assert_eq!(block_emission(10_499_999, cap, 1_000), 1_000);
        assert_eq!(block_emission(10_500_000, cap, 1_000), 500);
        assert_eq!(block_emission(15_749_999, cap, 1_000), 500);
        assert_eq!(block_emission(15_750_000, cap, 1_000), 250);
        assert_eq!(block_emission(18_375_000, cap, 1_000), 125);
        assert_eq!(
            block_emission(20_999_990, cap, 1_000),
            0,
            "1000 >> 11 rounds to zero"
        );
        // 22 halvings deep, 2^40 still leaves 2^18 per block: the cap clips it.
        assert_eq!(
            block_emission(big - 3, cap, 1 << 40),
            3,
            "never past the cap"
        );
        assert_eq!(block_emission(big, cap, 1_000), 0);
        assert_eq!(block_emission(big + 5, cap, 1_000), 0);
    }
}
