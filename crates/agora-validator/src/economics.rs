//! The cheater's expected profit under Proof of Sampling: what cheating on a
//! job gains against the collateral an audit that catches it slashes.
//!
//! Per job, a cheater gains the compute it does not spend (at most the job's
//! price, when it runs nothing) and risks, with probability audit rate ×
//! detection rate, its whole collateral. Cheating until caught gives the same
//! sign: about 1 / (p·d) jobs gain that many times the per-job saving against
//! one collateral, so it pays iff `saving > p · d · collateral`.

use agora_ledger::AuditParams;
use agora_types::{Amount, Price};

/// Expected profit of cheating on one job, in base units: `price ×
/// cost_saving` (the share of the price the cheater does not spend on
/// compute) less `audit_rate × detection × collateral`.
pub fn expected_profit(
    price: Amount,
    cost_saving: f64,
    audit_rate: f64,
    detection: f64,
    collateral: Amount,
) -> f64 {
    price as f64 * cost_saving - audit_rate * detection * collateral as f64
}

/// Least detection rate at which cheating does not pay (`≥ 1` means no
/// detection rate makes it unprofitable).
pub fn break_even_detection(
    price: Amount,
    cost_saving: f64,
    audit_rate: f64,
    collateral: Amount,
) -> f64 {
    let at_risk = audit_rate * collateral as f64;
    if at_risk <= 0.0 {
        return f64::INFINITY;
    }
    price as f64 * cost_saving / at_risk
}

/// The economic setting: the reference job's price at `price` and the
/// smallest collateral the ledger lets a provider at that price lock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Price of the reference job (`reference_job_tokens` in and out).
    pub job_price: Amount,
    /// `collateral_multiple × job_price`.
    pub collateral: Amount,
    /// `audit_rate_ppm` as a fraction.
    pub audit_rate: f64,
}

impl Setting {
    /// The setting for `price` under the chain's audit parameters.
    pub fn new(price: &Price, audit: &AuditParams) -> Self {
        let job_price = price.cost(audit.reference_job_tokens, audit.reference_job_tokens);
        Setting {
            job_price,
            collateral: job_price.saturating_mul(audit.collateral_multiple),
            audit_rate: f64::from(audit.audit_rate_ppm) / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profit_is_the_saving_less_the_expected_slash() {
        // 100 saved in full; 10% audited, 90% caught, 1,000 collateral: 100 - 90.
        assert!((expected_profit(100, 1.0, 0.1, 0.9, 1_000) - 10.0).abs() < 1e-9);
        // Caught every time it is audited: 100 - 100 = 0, break-even.
        assert!(expected_profit(100, 1.0, 0.1, 1.0, 1_000).abs() < 1e-9);
        // Half the price saved, 20x collateral, 10% audits, 99% detection:
        // 31 - 0.1 × 0.99 × 1,240 = 31 - 122.76.
        let p = expected_profit(62, 0.5, 0.1, 0.99, 1_240);
        assert!((p - (31.0 - 122.76)).abs() < 1e-9, "{p}");
        // Never caught: the whole saving is profit.
        assert!((expected_profit(62, 1.0, 0.1, 0.0, 1_240) - 62.0).abs() < 1e-9);
    }

    #[test]
    fn break_even_is_where_profit_crosses_zero() {
        // 62 / (0.1 × 1,240) = 0.5.
        let d = break_even_detection(62, 1.0, 0.1, 1_240);
        assert!((d - 0.5).abs() < 1e-9);
        assert!(expected_profit(62, 1.0, 0.1, d, 1_240).abs() < 1e-9);
        assert!(expected_profit(62, 1.0, 0.1, d + 0.01, 1_240) < 0.0);
        assert!(expected_profit(62, 1.0, 0.1, d - 0.01, 1_240) > 0.0);
        assert!(break_even_detection(62, 1.0, 0.0, 1_240).is_infinite());
    }

    #[test]
    fn the_default_setting_follows_the_ledger_rule() {
        let price = Price {
            input_per_1k: 10,
            output_per_1k: 20,
        };
        let s = Setting::new(&price, &AuditParams::default());
        // 2,048 × 10 / 1,000 + 2,048 × 20 / 1,000 = 61.44, rounded up.
        assert_eq!(s.job_price, 62);
        assert_eq!(s.collateral, 62 * 20);
        assert!((s.audit_rate - 0.1).abs() < 1e-12);
    }
}
