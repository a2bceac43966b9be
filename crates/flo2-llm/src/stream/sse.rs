//! Server-sent events, incrementally: bytes arrive in arbitrary chunks (a boundary may fall
//! inside a line, inside a JSON value or inside a multi-byte character), events come out whole.
//!
//! Follows the WHATWG event-stream rules that LLM providers rely on: `\n`, `\r\n` or `\r` line
//! ends, `event:` and `data:` fields (one optional space after the colon), multi-line data joined
//! with `\n`, comment lines (`:`) ignored, an event dispatched at a blank line.

use std::fmt::Write as _;

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
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        for &byte in chunk {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' | b'\r' => {
                    self.skip_lf = byte == b'\r';
                    self.end_line(out);
                }
                _ => {
                    if self.line.len() + self.data.len() >= MAX_EVENT_BYTES {
                        return Err(EventTooLarge);
                    }
                    self.line.push(byte);
                }
            }
        }
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
        // Lines are decoded whole, so a character split across chunks is intact here.
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
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
        let _ = writeln!(out, "event: {name}");
    }
    for line in data.split('\n') {
        let _ = writeln!(out, "data: {line}");
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
