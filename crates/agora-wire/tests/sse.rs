//! Properties of the SSE codec: whatever the events and however the bytes are
//! cut into chunks, decoding gives back the encoded events; an event over the
//! limit is refused with an error.

use agora_wire::sse::{encode, SseDecoder, SseError};
use proptest::prelude::*;

/// Decode `body` fed in pieces cut at `cuts` (positions, any order, clamped).
fn decode(body: &[u8], cuts: &[usize], limit: usize) -> Result<Vec<String>, SseError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut decoder = SseDecoder::new(limit);
    let mut events = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        events.extend(decoder.push(&body[start..cut])?);
        start = cut;
    }
    events.extend(decoder.finish()?);
    Ok(events)
}

/// The events as a body: each encoded, optionally with CRLF line ends and a
/// keep-alive comment before it.
fn body(events: &[String], crlf: bool, comments: bool) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        if comments {
            out.push_str(": keep-alive\n\n");
        }
        out.push_str(&encode(e));
    }
    if crlf {
        out = out.replace('\n', "\r\n");
    }
    out.into_bytes()
}

fn events() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[^\r]{0,40}", 0..8)
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips_at_any_chunking(
        events in events(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        crlf in any::<bool>(),
        comments in any::<bool>(),
    ) {
        let body = body(&events, crlf, comments);
        prop_assert_eq!(decode(&body, &cuts, 1 << 16).unwrap(), events);
    }

    #[test]
    fn an_event_over_the_limit_is_refused_at_any_chunking(
        before in events(),
        extra in 1usize..200,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        const LIMIT: usize = 256;
        let mut events: Vec<String> = before.into_iter().map(|e| e.replace('\n', " ")).collect();
        events.push("y".repeat(LIMIT + extra));
        let body = body(&events, false, false);
        prop_assert_eq!(decode(&body, &cuts, LIMIT), Err(SseError::TooLarge(LIMIT)));
    }
}

#[test]
fn a_peer_that_never_ends_its_event_is_cut_off() {
    let mut decoder = SseDecoder::new(1 << 10);
    let line = format!("data: {}\n", "z".repeat(100));
    let mut sent = 0usize;
    let err = loop {
        match decoder.push(line.as_bytes()) {
            Ok(events) => assert!(events.is_empty()),
            Err(e) => break e,
        }
        sent += line.len();
        assert!(sent < 1 << 20, "the decoder kept buffering");
    };
    assert_eq!(err, SseError::TooLarge(1 << 10));
    assert!(err.to_string().contains("longer than 1024 bytes"), "{err}");
}
