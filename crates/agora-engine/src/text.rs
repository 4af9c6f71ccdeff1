//! The text a job streams, as a function of its generated tokens: one
//! definition that the engine streams with ([`TextStream`], token by token)
//! and a verifier recomputes from a transcript ([`render`], all at once), so
//! the two can never disagree about what a client was sent.
//!
//! Token bytes become whole UTF-8 characters (a character split across
//! tokens waits for its last byte; bytes that can never form one become
//! U+FFFD), text that might begin a stop string is held back until it is
//! known not to, generation ends right before the first stop string (the
//! token that completed it is still an output token, its text is not
//! shown), and an end-of-generation token ends the job without being part
//! of the output or the text.

use crate::stop::{Released, StopMatcher, Utf8Stream};

/// What one generated token contributes to the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// An ordinary token: its bytes (empty for control tokens).
    Bytes(Vec<u8>),
    /// A token that ends generation: not an output token, no text.
    End,
}

/// Incremental rendering, as the engine streams: push each output token's
/// bytes, stream what comes back, and call [`TextStream::finish`] when the
/// job ends other than by a stop string.
#[derive(Debug, Default)]
pub struct TextStream {
    utf8: Utf8Stream,
    stops: StopMatcher,
}

impl TextStream {
    /// A stream for a job with these stop strings (empty ones are ignored).
    pub fn new(stops: &[String]) -> Self {
        TextStream {
            utf8: Utf8Stream::default(),
            stops: StopMatcher::new(stops),
        }
    }

    /// Add an output token's bytes: the text that may be streamed now, and
    /// whether a stop string ended the job (then nothing more is pushed and
    /// [`TextStream::finish`] is not called).
    pub fn push(&mut self, bytes: &[u8]) -> Released {
        self.stops.push(&self.utf8.push(bytes))
    }

    /// Generation ended without a stop string (an end-of-generation token,
    /// `max_tokens` or the context window): everything still held back, an
    /// incomplete character as U+FFFD, cut before a stop string that this
    /// completes (`stopped`).
    pub fn finish(&mut self) -> Released {
        let last = self.stops.push(&self.utf8.finish());
        if last.stopped {
            return last;
        }
        let mut text = last.text;
        text.push_str(&self.stops.finish());
        Released {
            text,
            stopped: false,
        }
    }
}

/// The text a token sequence streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The whole text a client is sent.
    pub text: String,
    /// Output tokens generation produced before it ended: up to and
    /// including the one that completed a stop string, or those before an
    /// end-of-generation token; all of them if neither came.
    pub kept: usize,
    /// A stop string or an end-of-generation token ended generation.
    pub stopped: bool,
}

/// The text a job streams when its tokens render to `pieces`, exactly as
/// [`TextStream`] streams it token by token under `stops`.
pub fn render(pieces: impl IntoIterator<Item = Piece>, stops: &[String]) -> Rendered {
    let mut stream = TextStream::new(stops);
    let mut text = String::new();
    let mut kept = 0;
    for piece in pieces {
        let bytes = match piece {
            Piece::Bytes(bytes) => bytes,
            Piece::End => {
                text.push_str(&stream.finish().text);
                return Rendered {
                    text,
                    kept,
                    stopped: true,
                };
            }
        };
        kept += 1;
        let released = stream.push(&bytes);
        text.push_str(&released.text);
        if released.stopped {
            return Rendered {
                text,
                kept,
                stopped: true,
            };
        }
    }
    let last = stream.finish();
    text.push_str(&last.text);
    Rendered {
        text,
        kept,
        stopped: last.stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(parts: &[&[u8]]) -> Vec<Piece> {
        parts.iter().map(|p| Piece::Bytes(p.to_vec())).collect()
    }

    #[test]
    fn stop_strings_end_tokens_and_split_characters() {
        let all = render(bytes(&[b"Hel", b"lo", b" wor", b"ld"]), &[]);
        assert_eq!(
            all,
            Rendered {
                text: "Hello world".into(),
                kept: 4,
                stopped: false
            }
        );
        let cut = render(bytes(&[b"Hel", b"lo", b" wor", b"ld"]), &["o w".into()]);
        assert_eq!(
            cut,
            Rendered {
                text: "Hell".into(),
                kept: 3,
                stopped: true
            }
        );
        // "é" split across two tokens comes out whole; an end token ends the
        // text and is not kept, and nothing after it counts.
        let mut pieces = bytes(&[&[0xC3], &[0xA9, b'!']]);
        pieces.push(Piece::End);
        pieces.extend(bytes(&[b"more"]));
        assert_eq!(
            render(pieces, &[]),
            Rendered {
                text: "é!".into(),
                kept: 2,
                stopped: true
            }
        );
        // Held-back text that was not a stop string after all is released at
        // the end, and an unfinished character becomes U+FFFD.
        assert_eq!(
            render(bytes(&[b"EN", &[0xE2]]), &["END".into()]).text,
            "EN\u{fffd}"
        );
    }

    /// One test case: token pieces (some splitting multi-byte characters,
    /// some with bytes that are never UTF-8, perhaps an end token) and stops.
    fn case() -> impl Strategy<Value = (Vec<Piece>, Vec<String>)> {
        let unit = prop::sample::select(vec![
            "a", "b", "\n", "é", "€", "🙂", "ab", "\u{fffd}", "\u{ff}", "\x00",
        ]);
        let text = prop::collection::vec(unit.clone(), 0..24).prop_map(|u| u.concat());
        let junk = prop::collection::vec(
            (
                0usize..64,
                prop::sample::select(vec![0xFFu8, 0x80, 0xE2, 0xF0]),
            ),
            0..3,
        );
        let cuts = prop::collection::vec(0usize..96, 0..12);
        let end = prop::option::of(0usize..16);
        let stop = prop::collection::vec(unit, 0..4).prop_map(|u| u.concat());
        let stops = prop::collection::vec(stop, 0..4);
        (text, junk, cuts, end, stops).prop_map(|(text, junk, cuts, end, stops)| {
            let mut all = text.into_bytes();
            for (at, b) in junk {
                all.insert(at.min(all.len()), b);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(all.len())).collect();
            cuts.push(all.len());
            cuts.sort_unstable();
            let (mut pieces, mut start) = (Vec::new(), 0);
            for cut in cuts {
                pieces.push(Piece::Bytes(all[start..cut].to_vec()));
                start = cut;
            }
            if let Some(at) = end {
                pieces.insert(at.min(pieces.len()), Piece::End);
            }
            (pieces, stops)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Streaming token by token (as the engine does) and rendering at
        /// once (as the verifier does) give the same text, and that text is
        /// the lossy UTF-8 decoding of all bytes before any end token, cut
        /// right before a stop string, with none inside it.
        #[test]
        fn streaming_and_rendering_at_once_agree((pieces, stops) in case()) {
            // The engine's loop (`batch.rs`, `Slot::accept` and `finish`).
            let mut stream = TextStream::new(&stops);
            let (mut streamed, mut stopped_by_string) = (String::new(), false);
            for piece in &pieces {
                let Piece::Bytes(bytes) = piece else { break };
                let released = stream.push(bytes);
                streamed.push_str(&released.text);
                if released.stopped {
                    stopped_by_string = true;
                    break;
                }
            }
            if !stopped_by_string {
                streamed.push_str(&stream.finish().text);
            }
            let rendered = render(pieces.clone(), &stops);
            prop_assert_eq!(&rendered.text, &streamed);

            let before_end: Vec<u8> = pieces
                .iter()
                .map_while(|p| match p {
                    Piece::Bytes(b) => Some(b.clone()),
                    Piece::End => None,
                })
                .flatten()
                .collect();
            let whole = String::from_utf8_lossy(&before_end);
            // Where a stop string cuts depends on where tokens end (the
            // first one completed in the text so far wins, as it arrives),
            // so the text is: all of it without stops; otherwise a prefix
            // holding no stop string and followed by one.
            let live: Vec<&str> = stops.iter().filter(|s| !s.is_empty()).map(String::as_str).collect();
            let first_stop = live.iter().filter_map(|s| whole.find(s)).min();
            let text = rendered.text.as_str();
            if first_stop.is_none() {
                prop_assert_eq!(text, &whole[..]);
            } else {
                prop_assert!(whole.starts_with(text), "{text:?} is not a prefix of {whole:?}");
                prop_assert!(live.iter().any(|s| whole[text.len()..].starts_with(s)));
                prop_assert!(live.iter().all(|s| !text.contains(s)));
            }
            let tokens = pieces.iter().take_while(|p| **p != Piece::End).count();
            prop_assert!(rendered.kept <= tokens);
            if first_stop.is_none() {
                prop_assert_eq!(rendered.kept, tokens);
            }
        }
    }
}
