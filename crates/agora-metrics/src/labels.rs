//! Keeping label values that come from data (API key ids, say) bounded.

use std::collections::HashSet;
use std::sync::Mutex;

/// Admits at most `cap` distinct values of one label; later newcomers are
/// reported as [`LabelCap::OVERFLOW`], so a label fed from data can never
/// grow a metric without bound.
#[derive(Debug)]
pub struct LabelCap {
    seen: Mutex<HashSet<String>>,
    cap: usize,
}

impl LabelCap {
    /// The value newcomers get once `cap` distinct values are admitted.
    pub const OVERFLOW: &'static str = "other";

    /// A cap of `cap` distinct values.
    pub fn new(cap: usize) -> Self {
        LabelCap {
            seen: Mutex::new(HashSet::new()),
            cap,
        }
    }

    /// `value` if it is admitted (already seen, or room for it), else
    /// [`Self::OVERFLOW`].
    pub fn admit<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value;
        }
        if seen.len() < self.cap {
            seen.insert(value.to_string());
            return value;
        }
        Self::OVERFLOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_beyond_the_cap_overflow_but_admitted_ones_stay() {
        let cap = LabelCap::new(2);
        assert_eq!(cap.admit("a"), "a");
        assert_eq!(cap.admit("b"), "b");
        assert_eq!(cap.admit("c"), LabelCap::OVERFLOW);
        assert_eq!(cap.admit("a"), "a");
    }
}
