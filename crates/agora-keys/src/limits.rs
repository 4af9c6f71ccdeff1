//! A key's limits and what it has spent: the pure budget check that every
//! reservation passes before a request is sent.

use agora_types::Amount;
use serde::{Deserialize, Serialize};

use crate::calendar::Period;

/// What one key may spend and how fast; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most the key may ever spend.
    pub total: Option<Amount>,
    /// Most per UTC day.
    pub daily: Option<Amount>,
    /// Most per ISO week (from Monday, UTC).
    pub weekly: Option<Amount>,
    /// Most per calendar month (UTC).
    pub monthly: Option<Amount>,
    /// Most requests per rolling minute.
    pub rpm: Option<u32>,
    /// Most tokens (prompt and completion) per rolling minute.
    pub tpm: Option<u64>,
}

impl Limits {
    /// The budget for `period`, if any.
    pub fn per(&self, period: Period) -> Option<Amount> {
        match period {
            Period::Day => self.daily,
            Period::Week => self.weekly,
            Period::Month => self.monthly,
        }
    }
}

/// Spent within one window of a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The window's index ([`Period::window`]).
    pub index: u64,
    /// Spent in it.
    pub spent: Amount,
}

/// What a key has spent: in total and in the current window of each period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Spent since the key was made.
    pub total: Amount,
    /// Per [`Period::ALL`], the last window spent in.
    pub windows: [Window; 3],
}

impl Spend {
    /// Spent in `period`'s window holding `now_ms` (0 once a new window began).
    pub fn in_period(&self, period: Period, now_ms: u64) -> Amount {
        let w = self.windows[period as usize];
        if w.index == period.window(now_ms) {
            w.spent
        } else {
            0
        }
    }

    /// Add `cost`, spent at `now_ms`.
    pub fn add(&mut self, cost: Amount, now_ms: u64) {
        self.total = self.total.saturating_add(cost);
        for p in Period::ALL {
            let index = p.window(now_ms);
            let spent = self.in_period(p, now_ms).saturating_add(cost);
            self.windows[p as usize] = Window { index, spent };
        }
    }
}

/// What `spend` leaves of the tightest budget in `limits` at `now_ms`
/// (`None` when the key has no budget).
pub fn remaining(limits: &Limits, spend: &Spend, now_ms: u64) -> Option<Amount> {
    let total = limits.total.map(|l| l.saturating_sub(spend.total));
    Period::ALL
        .iter()
        .filter_map(|&p| {
            limits
                .per(p)
                .map(|l| l.saturating_sub(spend.in_period(p, now_ms)))
        })
        .chain(total)
        .min()
}

/// A budget a request would break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// Which budget: `total`, `daily`, `weekly` or `monthly`.
    pub budget: &'static str,
    /// Its limit.
    pub limit: Amount,
    /// Spent and reserved against it already.
    pub committed: Amount,
    /// Milliseconds until the window resets (none for `total`).
    pub resets_in_ms: Option<u64>,
}

/// Whether `ask` more fits every budget in `limits`, given `spend` and the
/// `reserved` maximum cost of requests still running (counted against every
/// window, so a reservation made before a reset is never lost).
pub fn check_budget(
    limits: &Limits,
    spend: &Spend,
    reserved: Amount,
    ask: Amount,
    now_ms: u64,
) -> Result<(), OverBudget> {
    let over = |limit: Amount, spent: Amount| {
        let committed = spent.saturating_add(reserved);
        (committed.saturating_add(ask) > limit).then_some(committed)
    };
    if let Some(limit) = limits.total {
        if let Some(committed) = over(limit, spend.total) {
            return Err(OverBudget {
                budget: "total",
                limit,
                committed,
                resets_in_ms: None,
            });
        }
    }
    for p in Period::ALL {
        let Some(limit) = limits.per(p) else { continue };
        if let Some(committed) = over(limit, spend.in_period(p, now_ms)) {
            let end = p.window_end_ms(p.window(now_ms));
            return Err(OverBudget {
                budget: p.name(),
                limit,
                committed,
                resets_in_ms: Some(end - now_ms),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u64 = 86_400_000;
    const NOW: u64 = 1_796_256_000_000 + 3_600_000; // 2026-12-03 01:00 UTC

    #[test]
    fn a_daily_budget_resets_at_midnight_and_the_total_never_does() {
        let limits = Limits {
            total: Some(250),
            daily: Some(100),
            ..Limits::default()
        };
        let mut spend = Spend::default();
        spend.add(90, NOW);
        let e = check_budget(&limits, &spend, 0, 11, NOW).unwrap_err();
        assert_eq!((e.budget, e.committed), ("daily", 90));
        assert_eq!(e.resets_in_ms, Some(23 * 3_600_000));
        assert!(check_budget(&limits, &spend, 0, 10, NOW).is_ok());
        // A running request's reservation counts as spent.
        assert!(check_budget(&limits, &spend, 5, 10, NOW).is_err());
        let tomorrow = NOW + DAY;
        assert_eq!(spend.in_period(Period::Day, tomorrow), 0);
        assert!(check_budget(&limits, &spend, 0, 100, tomorrow).is_ok());
        spend.add(100, tomorrow);
        spend.add(50, tomorrow + DAY);
        let e = check_budget(&limits, &spend, 0, 11, tomorrow + 2 * DAY).unwrap_err();
        assert_eq!(
            (e.budget, e.committed, e.resets_in_ms),
            ("total", 240, None)
        );
    }

    #[test]
    fn remaining_is_what_the_tightest_budget_leaves() {
        let mut spend = Spend::default();
        spend.add(30, NOW);
        assert_eq!(remaining(&Limits::default(), &spend, NOW), None);
        let limits = Limits {
            total: Some(1_000),
            daily: Some(50),
            ..Limits::default()
        };
        assert_eq!(remaining(&limits, &spend, NOW), Some(20));
        assert_eq!(remaining(&limits, &spend, NOW + DAY), Some(50));
        spend.add(980, NOW + DAY);
        assert_eq!(remaining(&limits, &spend, NOW + 2 * DAY), Some(0));
    }

    proptest! {
        /// Whatever is spent, a request that passed never takes any window past its limit.
        #[test]
        fn an_accepted_request_fits_every_budget(
            costs in proptest::collection::vec((0u64..50, 0u64..40 * DAY), 0..40),
            reserved in 0u64..100, ask in 0u64..100,
            daily in 1u64..500, weekly in 1u64..1000, total in 1u64..2000,
        ) {
            let limits = Limits { total: Some(total), daily: Some(daily), weekly: Some(weekly), ..Limits::default() };
            let mut spend = Spend::default();
            let mut now = NOW;
            for (cost, step) in costs {
                now += step;
                spend.add(cost, now);
            }
            if check_budget(&limits, &spend, reserved, ask, now).is_ok() {
                prop_assert!(spend.total + reserved + ask <= total);
                prop_assert!(spend.in_period(Period::Day, now) + reserved + ask <= daily);
                prop_assert!(spend.in_period(Period::Week, now) + reserved + ask <= weekly);
            }
        }
    }
}
