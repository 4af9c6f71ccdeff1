//! What a run produced.

/// How a run ended. Every variant but [`RunStatus::DeadlineExceeded`] is
/// deterministic: the same module, dataset, parameters, seed and limits give
/// the same status on any machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// `_start` returned or called `exit(0)`.
    Success,
    /// The module called `exit` with this non-zero code.
    Exit(i32),
    /// A WebAssembly trap (unreachable, division by zero, out-of-bounds access, stack overflow).
    Trap,
    /// The fuel ran out.
    OutOfFuel,
    /// The module tried to grow its memory past the cap.
    MemoryExceeded,
    /// The module wrote more than the output cap.
    OutputTooLarge,
    /// The wall-clock deadline passed (host protection; never charged).
    DeadlineExceeded,
}

impl RunStatus {
    /// Stable one-byte code, used in receipts.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Exit(_) => 1,
            Self::Trap => 2,
            Self::OutOfFuel => 3,
            Self::MemoryExceeded => 4,
            Self::OutputTooLarge => 5,
            Self::DeadlineExceeded => 6,
        }
    }

    /// Stable name for JSON and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Exit(_) => "exit",
            Self::Trap => "trap",
            Self::OutOfFuel => "out_of_fuel",
            Self::MemoryExceeded => "memory_exceeded",
            Self::OutputTooLarge => "output_too_large",
            Self::DeadlineExceeded => "deadline_exceeded",
        }
    }

    /// Whether the run produced a result (it exited, with any code).
    pub fn completed(self) -> bool {
        matches!(self, Self::Success | Self::Exit(_))
    }
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// Everything written to stdout (empty unless [`RunStatus::completed`]).
    pub output: Vec<u8>,
    /// Fuel burned (the whole budget when it ran out).
    pub fuel_used: u64,
    /// Diagnostics written to stderr, capped; not part of the receipt.
    pub stderr: Vec<u8>,
}
