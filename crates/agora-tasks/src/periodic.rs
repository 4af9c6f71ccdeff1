//! The periodic tick loop of the background tasks (receipt batch committer,
//! voucher settler, auditor, directory refresh), written once:
//!
//! ```ignore
//! let mut ticks = Periodic::every(period, shutdown);
//! while ticks.tick().await {
//!     // one round; log its failure and go on
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

/// Ticks until a shutdown future resolves: [`Periodic::tick`] answers
/// `true` for a round to run, `false` once shutdown has started.
pub struct Periodic<S> {
    shutdown: Pin<Box<S>>,
    clock: Clock,
}

/// When the next round is due.
enum Clock {
    /// On a fixed period from the first tick; a late round delays the next.
    Every(Interval),
    /// A fixed gap after each round ends; the first round at once.
    AfterEach { gap: Duration, first: bool },
}

impl<S: Future<Output = ()>> Periodic<S> {
    /// Rounds every `period` (the first at once), as `tokio::time::interval`
    /// with [`MissedTickBehavior::Delay`] schedules them.
    pub fn every(period: Duration, shutdown: S) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Periodic {
            shutdown: Box::pin(shutdown),
            clock: Clock::Every(interval),
        }
    }

    /// The first round at once, then each one `gap` after the previous ended.
    pub fn after_each(gap: Duration, shutdown: S) -> Self {
        Periodic {
            shutdown: Box::pin(shutdown),
            clock: Clock::AfterEach { gap, first: true },
        }
    }

    /// Wait for the next round: `true` when it is due, `false` once shutdown
    /// has started (the loop then ends).
    pub async fn tick(&mut self) -> bool {
        match &mut self.clock {
            Clock::AfterEach { first, .. } if *first => {
                *first = false;
                true
            }
            Clock::AfterEach { gap, .. } => tokio::select! {
                _ = &mut self.shutdown => false,
                _ = tokio::time::sleep(*gap) => true,
            },
            Clock::Every(interval) => tokio::select! {
                _ = &mut self.shutdown => false,
                _ = interval.tick() => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const STEP: Duration = Duration::from_millis(40);

    #[tokio::test]
    async fn every_ticks_until_shutdown() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut ticks = Periodic::every(STEP, async move {
            let _ = rx.await;
        });
        let started = Instant::now();
        assert!(ticks.tick().await, "the first round runs at once");
        assert!(started.elapsed() < STEP);
        assert!(ticks.tick().await);
        assert!(ticks.tick().await);
        assert!(started.elapsed() >= 2 * STEP);
        tx.send(()).unwrap();
        assert!(!ticks.tick().await);
    }

    #[tokio::test]
    async fn after_each_waits_the_gap_after_a_round() {
        let mut ticks = Periodic::after_each(STEP, std::future::pending());
        assert!(ticks.tick().await);
        // A round as long as the gap: the next one is a whole gap after it.
        tokio::time::sleep(STEP).await;
        let ended = Instant::now();
        assert!(ticks.tick().await);
        assert!(ended.elapsed() >= STEP);
    }

    #[tokio::test]
    async fn after_each_ends_on_shutdown() {
        let mut ticks = Periodic::after_each(Duration::from_secs(60), std::future::ready(()));
        assert!(ticks.tick().await, "the first round runs at once");
        assert!(!ticks.tick().await);
    }
}
