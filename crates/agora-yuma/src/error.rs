//! Errors for malformed parameters or inputs; the epoch never panics on them.

use thiserror::Error;

/// Why [`crate::epoch`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum YumaError {
    /// A per-validator vector does not have one entry per validator.
    #[error("{what} has {got} entries, expected {expected} (one per validator)")]
    LengthMismatch {
        /// Which input field.
        what: &'static str,
        /// Number of validators (the length of `stakes`).
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// A weight or bond names a provider uid outside `0..n_providers`.
    #[error("{what} row {validator} names provider {uid}, but the market has {n_providers}")]
    ProviderOutOfRange {
        /// `weights` or `prev_bonds`.
        what: &'static str,
        /// Row (validator index).
        validator: usize,
        /// Offending uid.
        uid: u16,
        /// Number of providers in the market.
        n_providers: usize,
    },
    /// A weight or bond row names the same provider twice.
    #[error("{what} row {validator} names provider {uid} more than once")]
    DuplicateProvider {
        /// `weights` or `prev_bonds`.
        what: &'static str,
        /// Row (validator index).
        validator: usize,
        /// Repeated uid.
        uid: u16,
    },
    /// More providers than a `u16` uid can address.
    #[error("{0} providers, at most 65536 are addressable by a u16 uid")]
    TooManyProviders(usize),
    /// More validators than the median's packed index allows.
    #[error("{0} validators, at most 2^31 are supported")]
    TooManyValidators(usize),
    /// A parts-per-million parameter is above 1,000,000.
    #[error("parameter {name} is {value} ppm, above 1,000,000")]
    RatioOutOfRange {
        /// Parameter name.
        name: &'static str,
        /// Value given.
        value: u32,
    },
}
