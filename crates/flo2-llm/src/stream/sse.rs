//! Server-sent events, incrementally: bytes arrive in arbitrary chunks (a boundary may fall
//! inside a line, inside a JSON value or inside a multi-byte character), events come out whole.
//!
//! Follows the WHATWG event-stream rules that LLM providers rely on: `\n`, `\r\n` or `\r` line
//! ends, `event:` and `data:` fields (one optional space after the colon), multi-line data joined
//! with `\n`, comment lines (`:`) ignored, an event dispatched at a blank line.

/// One decoded event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Largest event accepted; a stream that grows one past this is malformed or hostile.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// The decoder's error: an event or line longer than [`MAX_EVENT_BYTES`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event larger than {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

/// Incremental decoder. Feed it chunks; take complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `chunk`, appending every event it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        while let Some(&first) = chunk.first() {
            if std::mem::take(&mut self.skip_lf) && first == b'\n' {
                chunk = &chunk[1..];
                continue;
            }
            // Whole runs up to the next line end, not byte by byte.
            let Some(at) = memchr::memchr2(b'\n', b'\r', chunk) else {
                return self.extend_line(chunk);
            };
            self.extend_line(&chunk[..at])?;
            self.skip_lf = chunk[at] == b'\r';
            self.end_line(out);
            chunk = &chunk[at + 1..];
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.line.len() + self.data.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Ends the stream: an event without its closing blank line is still delivered, as
    /// providers sometimes close right after the last `data:` line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        // Lines are decoded whole, so a character split across chunks is intact here. The
        // buffer is taken out for the borrow and put back, keeping its capacity.
        let mut bytes = std::mem::take(&mut self.line);
        self.field(&String::from_utf8_lossy(&bytes));
        bytes.clear();
        self.line = bytes;
    }

    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

/// Appends one event in wire form (`event:` line if named, `data:` lines, blank line).
pub fn encode(out: &mut String, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            d.feed(chunk, &mut out).unwrap();
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn events_survive_every_chunk_boundary() {
        let input = "event: message_start\ndata: {\"a\":\"h\u{e9}llo \u{1f600}\"}\n\n: ping\r\ndata: line1\r\ndata: line2\r\n\r\ndata: [DONE]\n\n";
        let whole = decode_in_pieces(input.as_bytes(), input.len());
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":\"h\u{e9}llo \u{1f600}\"}");
        assert_eq!(whole[1].data, "line1\nline2");
        assert_eq!(whole[2].data, "[DONE]");
        for piece in 1..input.len() {
            assert_eq!(
                decode_in_pieces(input.as_bytes(), piece),
                whole,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn a_final_event_without_blank_line_is_delivered() {
        assert_eq!(
            decode_in_pieces(b"data: x", 3),
            [SseEvent {
                event: None,
                data: "x".into()
            }]
        );
        assert_eq!(decode_in_pieces(b"\n\n\n", 1), []);
    }

    #[test]
    fn encode_round_trips() {
        let mut s = String::new();
        encode(&mut s, Some("e"), "a\nb");
        encode(&mut s, None, "{}");
        assert_eq!(s, "event: e\ndata: a\ndata: b\n\ndata: {}\n\n");
        let back = decode_in_pieces(s.as_bytes(), 2);
        assert_eq!(
            back[0],
            SseEvent {
                event: Some("e".into()),
                data: "a\nb".into()
            }
        );
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big, &mut out), Err(EventTooLarge));
    }
}
