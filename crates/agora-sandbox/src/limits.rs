//! The resources one job may use.

use std::time::Duration;

use crate::SandboxError;

/// Caps on one run; every one of them is part of what a re-run must repeat,
/// except `deadline`, which only protects the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (about one unit per WebAssembly instruction) the run may burn.
    pub max_fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Largest output (stdout), in bytes.
    pub output_bytes: usize,
    /// Largest diagnostic output (stderr) kept, in bytes; more is dropped.
    pub stderr_bytes: usize,
    /// Wall-clock time after which the run is interrupted (not deterministic:
    /// a run cut off by it is never charged).
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_fuel: 50_000_000_000,
            memory_bytes: 128 << 20,
            output_bytes: 1 << 20,
            stderr_bytes: 64 << 10,
            deadline: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// Refuse limits no job could run under.
    pub fn check(&self) -> Result<(), SandboxError> {
        if self.max_fuel == 0 {
            return Err(SandboxError::InvalidLimits(
                "max_fuel must be positive".into(),
            ));
        }
        if self.memory_bytes < 64 << 10 {
            return Err(SandboxError::InvalidLimits(
                "memory_bytes must allow at least one 64 KiB page".into(),
            ));
        }
        if self.deadline.is_zero() {
            return Err(SandboxError::InvalidLimits(
                "deadline must be positive".into(),
            ));
        }
        Ok(())
    }
}
