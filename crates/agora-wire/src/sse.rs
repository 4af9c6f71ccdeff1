//! A bounded codec for `text/event-stream` bodies (the WHATWG server-sent
//! events format), reduced to what agora and OpenAI-compatible servers use:
//! `data:` lines, joined per event, dispatched on a blank line.
//!
//! Bytes arrive in arbitrary chunks (a line, or even a `\r\n`, may be split
//! between two), so the decoder keeps the unfinished line between calls. It
//! holds at most `limit` bytes of a line or an event: a peer that sends more
//! gets [`SseError::TooLarge`], not an ever-growing buffer.

/// Why a stream is not a usable event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line is not UTF-8.
    #[error("an event-stream line is not valid UTF-8")]
    InvalidUtf8,
    /// A line or an event grew past the limit (a server that never ends its lines).
    #[error("an event is longer than {0} bytes")]
    TooLarge(usize),
}

/// One event carrying `data`, encoded: a `data:` line per line of `data`,
/// then the blank line that dispatches it. `data` must not contain `\r`
/// (a carriage return ends a line in this format).
pub fn encode(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 8);
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Turns body chunks into the `data` of complete events.
#[derive(Debug)]
pub struct SseDecoder {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The `data` of the event being read; `None` until a `data` field arrives.
    data: Option<String>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Most bytes one line or one event may hold.
    limit: usize,
}

impl SseDecoder {
    /// A decoder refusing lines and events longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            data: None,
            after_cr: false,
            limit,
        }
    }

    /// Feed the next chunk of the body; returns the `data` of each event it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(data) = self.line_done(&line)? {
                        events.push(data);
                    }
                }
                _ => {
                    if self.line.len() >= self.limit {
                        return Err(SseError::TooLarge(self.limit));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    /// The body ended: the event still being read, if any (servers may omit
    /// the final blank line).
    pub fn finish(&mut self) -> Result<Option<String>, SseError> {
        let line = std::mem::take(&mut self.line);
        if let Some(data) = self.line_done(&line)? {
            return Ok(Some(data));
        }
        Ok(self.data.take())
    }

    /// Interpret one complete line; a blank line dispatches the event.
    fn line_done(&mut self, line: &[u8]) -> Result<Option<String>, SseError> {
        if line.is_empty() {
            return Ok(self.data.take());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if line.starts_with(':') {
            return Ok(None); // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field != "data" {
            return Ok(None); // event, id, retry: nothing an OpenAI stream needs
        }
        match &mut self.data {
            Some(data) => {
                if data.len() + value.len() + 1 > self.limit {
                    return Err(SseError::TooLarge(self.limit));
                }
                // Every `data` line after the first starts a new line of the event.
                data.push('\n');
                data.push_str(value);
            }
            None => {
                if value.len() + 1 > self.limit {
                    return Err(SseError::TooLarge(self.limit));
                }
                self.data = Some(value.to_string());
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Result<Vec<String>, SseError> {
        let mut p = SseDecoder::new(64);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c)?);
        }
        out.extend(p.finish()?);
        Ok(out)
    }

    #[test]
    fn events_are_split_on_blank_lines_whatever_the_chunking() {
        let body = b"data: {\"a\":1}\n\n: keep-alive\n\ndata:{\"b\":2}\r\n\r\nevent: x\nid: 7\ndata: [DONE]\n\n";
        let expected = vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"];
        assert_eq!(all(&[body]).unwrap(), expected);
        // Every split point, including between `\r` and `\n`, gives the same events.
        for i in 0..body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(all(&[a, b]).unwrap(), expected, "split at {i}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(all(&bytes).unwrap(), expected);
    }

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream =
            b"data: {\"a\":1}\n\n: comment\n\ndata:x\r\ndata: y\r\n\r\nevent: e\ndata: last\n\n";
        for cut in 0..stream.len() {
            let mut d = SseDecoder::new(1 << 20);
            let mut got = d.push(&stream[..cut]).unwrap();
            got.extend(d.push(&stream[cut..]).unwrap());
            assert_eq!(got, vec!["{\"a\":1}", "x\ny", "last"], "cut at {cut}");
        }
    }

    #[test]
    fn multi_line_data_is_joined_and_bare_cr_ends_lines() {
        assert_eq!(all(&[b"data: a\ndata: b\n\n"]).unwrap(), vec!["a\nb"]);
        assert_eq!(all(&[b"data: x\r\rdata: y\r\r"]).unwrap(), vec!["x", "y"]);
        // Empty data lines are lines of the event too.
        assert_eq!(all(&[b"data:\ndata: a\n\n"]).unwrap(), vec!["\na"]);
        assert_eq!(all(&[b"data\n\n"]).unwrap(), vec![""]);
    }

    #[test]
    fn a_last_event_without_its_blank_line_is_kept() {
        assert_eq!(all(&[b"data: [DONE]"]).unwrap(), vec!["[DONE]"]);
        assert_eq!(all(&[b"data: [DONE]\n"]).unwrap(), vec!["[DONE]"]);
        assert!(all(&[b": only a comment\n"]).unwrap().is_empty());
        assert!(all(&[b""]).unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(all(&[b"data: \xff\xfe\n\n"]), Err(SseError::InvalidUtf8));
        let long = [b'x'; 100];
        assert_eq!(all(&[b"data: ", &long]), Err(SseError::TooLarge(64)));
        // Many short lines that together exceed the limit.
        let many = b"data: 0123456789\n".repeat(10);
        assert_eq!(all(&[&many]), Err(SseError::TooLarge(64)));
        // Lines that are not fields at all are ignored, not fatal.
        assert_eq!(all(&[b"garbage\n\ndata: ok\n\n"]).unwrap(), vec!["ok"]);
    }

    #[test]
    fn an_endless_line_is_refused_without_buffering_it() {
        let mut d = SseDecoder::new(1024);
        let chunk = [b'x'; 4096];
        let mut refused = None;
        for i in 0..1024 {
            match d.push(&chunk) {
                Ok(events) => assert!(events.is_empty()),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
            assert!(d.line.len() <= 1024);
        }
        assert_eq!(refused, Some((0, SseError::TooLarge(1024))));
        assert!(d.line.len() <= 1024, "held {} bytes", d.line.len());
    }

    #[test]
    fn encoded_events_decode_to_their_data() {
        for data in ["", "x", "{\"a\":1}", "a\nb", "\n", " lead", "a\n\nb\n"] {
            let mut d = SseDecoder::new(64);
            assert_eq!(d.push(encode(data).as_bytes()).unwrap(), vec![data]);
            assert_eq!(d.finish().unwrap(), None);
        }
    }
}
