//! An incremental parser for `text/event-stream` bodies (the WHATWG server-sent
//! events format), reduced to what OpenAI-compatible servers use: `data:`
//! lines, joined per event, dispatched on a blank line.
//!
//! Bytes arrive in arbitrary chunks (a line, or even a `\r\n`, may be split
//! between two), so the parser keeps the unfinished line between calls.

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

/// Turns body chunks into the `data` of complete events.
#[derive(Debug)]
pub struct SseParser {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The `data` of the event being read; `None` until a `data` field arrives.
    data: Option<String>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Most bytes one line or one event may hold.
    limit: usize,
}

impl SseParser {
    /// A parser refusing lines and events longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        SseParser {
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
        let data = self.data.get_or_insert_with(String::new);
        if data.len() + value.len() + 1 > self.limit {
            return Err(SseError::TooLarge(self.limit));
        }
        if !data.is_empty() || !value.is_empty() {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Result<Vec<String>, SseError> {
        let mut p = SseParser::new(64);
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
    fn multi_line_data_is_joined_and_bare_cr_ends_lines() {
        assert_eq!(all(&[b"data: a\ndata: b\n\n"]).unwrap(), vec!["a\nb"]);
        assert_eq!(all(&[b"data: x\r\rdata: y\r\r"]).unwrap(), vec!["x", "y"]);
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
}
