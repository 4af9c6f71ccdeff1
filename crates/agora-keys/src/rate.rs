//! Requests and tokens per rolling minute, per key, kept in memory (a
//! restart forgets them, which only ever lets a key start afresh).

use std::collections::VecDeque;

use crate::limits::Limits;

const MINUTE_MS: u64 = 60_000;

/// A rate limit a request would break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverRate {
    /// `rpm` or `tpm`.
    pub limit_name: &'static str,
    /// The limit.
    pub limit: u64,
    /// Milliseconds until enough of the minute has rolled off.
    pub retry_in_ms: u64,
    /// Whether no wait can help: the request alone exceeds the limit.
    pub never: bool,
}

/// One key's requests and tokens in the last minute.
#[derive(Debug, Default)]
pub struct RateWindow {
    requests: VecDeque<u64>,
    /// (when, reservation, tokens): reserved tokens until settled, then actual.
    tokens: VecDeque<(u64, u64, u64)>,
}

impl RateWindow {
    fn roll(&mut self, now_ms: u64) {
        // An entry leaves the window a minute after it was made.
        let gone = |t: u64| t.saturating_add(MINUTE_MS) <= now_ms;
        while self.requests.front().is_some_and(|&t| gone(t)) {
            self.requests.pop_front();
        }
        while self.tokens.front().is_some_and(|&(t, _, _)| gone(t)) {
            self.tokens.pop_front();
        }
    }

    /// Admit a request of at most `tokens` tokens at `now_ms` under `limits`,
    /// recording it as reservation `id`.
    pub fn admit(
        &mut self,
        limits: &Limits,
        now_ms: u64,
        id: u64,
        tokens: u64,
    ) -> Result<(), OverRate> {
        self.roll(now_ms);
        if let Some(rpm) = limits.rpm {
            if self.requests.len() as u64 >= u64::from(rpm) {
                let oldest = self.requests.front().copied().unwrap_or(now_ms);
                return Err(OverRate {
                    limit_name: "rpm",
                    limit: u64::from(rpm),
                    retry_in_ms: (oldest + MINUTE_MS).saturating_sub(now_ms),
                    never: rpm == 0,
                });
            }
        }
        if let Some(tpm) = limits.tpm {
            let used: u64 = self.tokens.iter().map(|&(_, _, n)| n).sum();
            if used.saturating_add(tokens) > tpm {
                // Wait until enough old entries roll off to make room.
                let mut freed = 0u64;
                let mut retry = MINUTE_MS;
                for &(t, _, n) in &self.tokens {
                    freed += n;
                    if used - freed + tokens <= tpm {
                        retry = (t + MINUTE_MS).saturating_sub(now_ms);
                        break;
                    }
                }
                return Err(OverRate {
                    limit_name: "tpm",
                    limit: tpm,
                    retry_in_ms: retry,
                    never: tokens > tpm,
                });
            }
        }
        self.requests.push_back(now_ms);
        self.tokens.push_back((now_ms, id, tokens));
        Ok(())
    }

    /// Replace reservation `id`'s reserved tokens by the `actual` count.
    pub fn settle(&mut self, id: u64, actual: u64) {
        if let Some(entry) = self.tokens.iter_mut().find(|e| e.1 == id) {
            entry.2 = actual;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_refuses_the_extra_request_until_the_minute_rolls() {
        let limits = Limits {
            rpm: Some(2),
            ..Limits::default()
        };
        let mut w = RateWindow::default();
        w.admit(&limits, 1_000, 1, 0).unwrap();
        w.admit(&limits, 2_000, 2, 0).unwrap();
        let e = w.admit(&limits, 3_000, 3, 0).unwrap_err();
        assert_eq!(
            (e.limit_name, e.retry_in_ms, e.never),
            ("rpm", 58_000, false)
        );
        assert!(w.admit(&limits, 61_000, 4, 0).is_ok());
    }

    #[test]
    fn tpm_counts_reserved_tokens_until_they_settle() {
        let limits = Limits {
            tpm: Some(100),
            ..Limits::default()
        };
        let mut w = RateWindow::default();
        w.admit(&limits, 0, 1, 80).unwrap();
        assert!(w.admit(&limits, 10, 2, 30).is_err());
        w.settle(1, 20);
        w.admit(&limits, 20, 3, 30).unwrap();
        let e = w.admit(&limits, 30, 4, 60).unwrap_err();
        assert_eq!((e.limit_name, e.retry_in_ms), ("tpm", 59_970));
        assert!(w.admit(&limits, 30, 5, 101).unwrap_err().never);
    }
}
