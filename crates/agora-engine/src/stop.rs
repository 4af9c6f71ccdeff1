//! Turning a stream of token bytes into text the client may see: whole UTF-8
//! characters only, and never any part of a stop string.

/// Reassembles UTF-8 characters that llama.cpp splits across tokens.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Add a token's bytes; returns every complete character so far.
    /// Bytes that can never form a character become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end of generation, lossily decoded.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Holds back text that might be the start of a stop string.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What the matcher lets through after a push.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    /// Text that is safe to show.
    pub text: String,
    /// A stop string was found; `text` ends right before it.
    pub stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored.
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Add generated text; returns what can be released now.
    pub fn push(&mut self, text: &str) -> Released {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released {
                text,
                stopped: true,
            };
        }
        let keep = self.longest_partial_suffix();
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        Released {
            text,
            stopped: false,
        }
    }

    /// Generation ended without a stop string: release what was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of `held` that is a proper prefix of a stop string.
    fn longest_partial_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            let max = (stop.len() - 1).min(self.held.len());
            for len in (best + 1..=max).rev() {
                let start = self.held.len() - len;
                if self.held.is_char_boundary(start)
                    && stop.as_bytes().starts_with(&self.held.as_bytes()[start..])
                {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_split_across_tokens_is_reassembled() {
        let mut s = Utf8Stream::default();
        let bytes = "é🙂".as_bytes();
        assert_eq!(s.push(&bytes[..1]), "");
        assert_eq!(s.push(&bytes[1..3]), "é");
        assert_eq!(s.push(&bytes[3..5]), "");
        assert_eq!(s.push(&bytes[5..]), "🙂");
        assert_eq!(s.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(s.push(&[0xe2]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_string_split_across_pushes_is_cut() {
        let mut m = StopMatcher::new(&["\n\nUser:".into()]);
        assert_eq!(
            m.push("Hello\n"),
            Released {
                text: "Hello".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("\nUs"),
            Released {
                text: String::new(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("er: hi"),
            Released {
                text: String::new(),
                stopped: true
            }
        );
    }

    #[test]
    fn false_alarm_is_released() {
        let mut m = StopMatcher::new(&["END".into(), "".into()]);
        assert_eq!(m.push("The EN").text, "The ");
        assert_eq!(m.push("D? no, ENTER").text, "");
        let mut m = StopMatcher::new(&["END".into()]);
        assert_eq!(m.push("EN").text, "");
        assert_eq!(m.push("TER").text, "ENTER");
        assert_eq!(m.push("EN").text, "");
        assert_eq!(m.finish(), "EN");
    }

    proptest! {
        /// However the text is split, the released text is exactly the text up
        /// to the first stop string (or all of it).
        #[test]
        fn released_text_is_the_prefix_before_the_first_stop(
            text in "[ab\n]{0,40}", stop in "[ab\n]{1,4}", cuts in prop::collection::vec(0usize..40, 0..6),
        ) {
            let mut m = StopMatcher::new(std::slice::from_ref(&stop));
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.push(text.len());
            cuts.sort_unstable();
            let (mut out, mut start, mut stopped) = (String::new(), 0, false);
            for cut in cuts {
                let r = m.push(&text[start..cut]);
                out.push_str(&r.text);
                start = cut;
                if r.stopped { stopped = true; break; }
            }
            if !stopped { out.push_str(&m.finish()); }
            let expected = text.find(&stop).map_or(text.as_str(), |at| &text[..at]);
            prop_assert_eq!(out, expected);
            prop_assert_eq!(stopped, text.contains(&stop));
        }
    }
}
