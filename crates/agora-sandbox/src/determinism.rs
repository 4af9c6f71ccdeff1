//! The sandbox's only sources of time and randomness: a clock frozen at zero
//! and a BLAKE3 stream keyed by the job's seed.

use std::convert::Infallible;
use std::time::Duration;

use rand_core010::TryRng;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// A clock that always reads zero: a job cannot observe time.
pub(crate) struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Domain separating the job randomness stream from other BLAKE3 uses.
const RANDOM_DOMAIN: &str = "agora 2026 sandbox random v1";

/// Randomness for a job: the BLAKE3 extendable output keyed by its seed.
/// wasmtime-wasi's `random_get` draws one `u32` per guest byte and keeps its
/// low byte, so the guest sees bytes 0, 4, 8, ... of the stream (pinned by
/// the tests' fixed vectors).
pub(crate) struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    pub(crate) fn new(seed: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(RANDOM_DOMAIN);
        hasher.update(seed);
        Self(hasher.finalize_xof())
    }
}

impl TryRng for SeededRandom {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dest);
        Ok(())
    }
}
