//! Weights by commit-reveal: each epoch a validator commits a hash of its
//! weights over a model's providers and reveals them in the next epoch, so
//! a copier can only copy stale consensus. Weights follow the audit record:
//! a provider with a confirmed failure gets nothing, the others get a share
//! proportional to the work their passed audits show, up to the collateral
//! they have at stake.

use agora_types::{weights_commitment, AccountId, Hash32, ModelId, MAX_WEIGHTS};

use crate::ports::ProviderScore;

/// Weights committed in `epoch`, to reveal in `epoch + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingReveal {
    /// Epoch of the commit.
    pub epoch: u64,
    /// The weights committed.
    pub weights: Vec<(AccountId, u16)>,
    /// The salt that hid them.
    pub salt: Hash32,
}

/// The weights a validator sets from the chain's audit records: zero for a
/// provider with a confirmed failure, else the work its passed audits show
/// (`passed × job_value`, at least one unit per pass) capped at its
/// collateral, discounted by its pass rate among statistically judged jobs
/// (`× passed / (passed + flagged)`), scaled so the best gets `u16::MAX`.
/// Providers nobody audited yet get zero and are left out.
///
/// The cap is what makes passes worth nothing beyond real stake: a provider
/// can fabricate passing jobs cheaply (re-signing one real transcript under
/// fresh job ids, or paying itself), but past its collateral they add no
/// weight; more weight needs more slashable collateral.
pub fn weights_from_scores(scores: &[ProviderScore]) -> Vec<(AccountId, u16)> {
    let eligible = |s: &&ProviderScore| s.failed == 0 && s.passed > 0;
    let credit = |s: &ProviderScore| {
        let passed = u128::from(s.passed);
        let work = passed * u128::from(s.job_value.max(1));
        work.min(u128::from(s.stake)) * passed / (passed + u128::from(s.flagged))
    };
    let best = scores.iter().filter(eligible).map(credit).max();
    let Some(best) = best.filter(|b| *b > 0) else {
        return Vec::new();
    };
    let mut weights: Vec<(AccountId, u16)> = scores
        .iter()
        .filter(eligible)
        .map(|s| {
            let w = credit(s) * u128::from(u16::MAX) / best;
            (s.provider, u16::try_from(w).unwrap_or(u16::MAX))
        })
        .filter(|(_, w)| *w > 0)
        .collect();
    weights.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    weights.truncate(MAX_WEIGHTS);
    weights
}

/// The commitment for `weights` by `me` on `model` under `salt`.
pub(crate) fn commitment(
    me: &AccountId,
    model: &ModelId,
    weights: &[(AccountId, u16)],
    salt: &Hash32,
) -> Hash32 {
    weights_commitment(me, model, weights, salt)
}

/// The epoch a transaction submitted after final height `head` will land in,
/// or `None` when `head` is so close to an epoch boundary that it might land
/// in either (then wait a round).
pub(crate) fn landing_epoch(head: u64, tempo: u64) -> Option<u64> {
    if tempo == 0 {
        return None;
    }
    // Leave a few blocks of slack: the transaction waits in the mempool.
    let first = (head + 1) / tempo;
    let last = (head + 1 + LANDING_SLACK_BLOCKS) / tempo;
    (first == last).then_some(first)
}

/// Blocks a submitted transaction may take to be included.
const LANDING_SLACK_BLOCKS: u64 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn score(id: u8, passed: u64, failed: u64) -> ProviderScore {
        ProviderScore {
            flagged: 0,
            provider: AccountId([id; 32]),
            passed,
            failed,
            stake: 1_000_000,
            job_value: 7,
        }
    }

    /// Issue 13, row 14i: a provider that fabricates passing jobs (re-signed
    /// replays of one transcript, or jobs it pays itself for) gains weight
    /// only up to its collateral; beyond it, weight follows stake.
    #[test]
    fn fabricated_passes_add_no_weight_beyond_the_collateral() {
        let honest = score(1, 1_000, 0); // 7,000 of work at stake 1,000,000: uncapped
        let mut inflater = score(2, 10_000_000, 0); // 70M of work, capped at its stake
        inflater.stake = 7_000;
        let w = weights_from_scores(&[honest, inflater]);
        assert_eq!(
            w,
            vec![
                (AccountId([1; 32]), u16::MAX),
                (AccountId([2; 32]), u16::MAX)
            ]
        );
        // Doubling the fabricated passes changes nothing; only more stake does.
        let mut more = inflater;
        more.passed *= 2;
        assert_eq!(weights_from_scores(&[honest, more]), w);
        more.stake *= 2;
        assert_eq!(
            weights_from_scores(&[honest, more]),
            vec![(AccountId([2; 32]), u16::MAX), (AccountId([1; 32]), 32_767)]
        );
        // A free provider's passes count one unit each, still capped.
        let mut free = score(3, 50, 0);
        free.job_value = 0;
        free.stake = 10;
        assert_eq!(
            weights_from_scores(&[free, score(4, 2, 0)]),
            vec![(AccountId([4; 32]), u16::MAX), (AccountId([3; 32]), 46_810)]
        );
    }

    #[test]
    fn weights_follow_passed_audits_and_exclude_failures() {
        let w = weights_from_scores(&[
            score(1, 10, 0),
            score(2, 5, 0),
            score(3, 40, 1),
            score(4, 0, 0),
        ]);
        assert_eq!(
            w,
            vec![(AccountId([1; 32]), u16::MAX), (AccountId([2; 32]), 32_767)]
        );
        assert!(weights_from_scores(&[score(1, 0, 0), score(2, 3, 2)]).is_empty());
    }

    #[test]
    fn statistical_flags_discount_weight_by_the_pass_rate() {
        // 10 passes and 10 flags earn what 5 clean passes earn.
        let mut flagged = score(2, 10, 0);
        flagged.flagged = 10;
        let w = weights_from_scores(&[score(1, 10, 0), flagged, score(3, 5, 0)]);
        assert_eq!(
            w,
            vec![
                (AccountId([1; 32]), u16::MAX),
                (AccountId([2; 32]), 32_767),
                (AccountId([3; 32]), 32_767)
            ]
        );
        // Flags without passes earn nothing.
        let mut only = score(4, 0, 0);
        only.flagged = 3;
        assert!(weights_from_scores(&[only]).is_empty());
    }

    #[test]
    fn transactions_near_an_epoch_boundary_wait() {
        assert_eq!(landing_epoch(0, 20), Some(0));
        assert_eq!(landing_epoch(15, 20), Some(0));
        assert_eq!(landing_epoch(16, 20), None);
        assert_eq!(landing_epoch(18, 20), None);
        assert_eq!(landing_epoch(19, 20), Some(1));
        assert_eq!(landing_epoch(5, 0), None);
    }
}
