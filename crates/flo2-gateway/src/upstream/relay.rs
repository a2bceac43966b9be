//! Relaying an upstream stream to the caller, event by event: same-format streams are forwarded
//! as they come (re-framed per event, the data untouched), cross-format streams are translated.
//! Nothing is buffered beyond the event being handled.

use std::pin::Pin;
use std::time::Duration;

use axum::body::Bytes;
use flo2_llm::common::StreamEvent;
use flo2_llm::providers::WireFamily;
use flo2_llm::stream::decode::StreamDecoder;
use flo2_llm::stream::encode::{self, AnthropicEncoder, OpenAiEncoder};
use flo2_llm::stream::sse::{self, SseDecoder, SseEvent};
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use flo2_core::FailureKind;

use crate::error::ApiFormat;
use crate::metering::meter::Meter;
use crate::upstream::plan::Mode;

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

enum Output {
    Passthrough {
        inbound: ApiFormat,
        client_wants_usage: bool,
    },
    OpenAi(OpenAiEncoder),
    Anthropic(AnthropicEncoder),
}

/// Why a stream failed before the caller received anything.
#[derive(Debug)]
pub struct EarlyFailure {
    /// The upstream's or flo2's message.
    pub message: String,
}

/// One relayed stream.
pub struct Relay {
    upstream: ByteStream,
    sse: SseDecoder,
    decoder: StreamDecoder,
    output: Output,
    meter: Meter,
    events: Vec<SseEvent>,
    complete: bool,
    finished: bool,
    failure: Option<String>,
    idle: Idle,
}

/// The stream's idle limit after its first token: a stream that sends nothing for longer is
/// ended with an error event and metered 504, so a stalled upstream does not hold the caller,
/// the upstream connection and the meter forever.
///
/// One timer per stream, not one per event: each event only notes the time, and when the timer
/// fires early (events kept coming) it is moved to the last event plus the limit.
struct Idle {
    limit: Duration,
    last: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

/// The idle limit of a relay not given one ([`Relay::with_idle_limit`]).
const DEFAULT_IDLE_LIMIT: Duration = Duration::from_secs(120);

/// What the upstream gave next.
enum Next {
    Chunk(Option<Result<Bytes, hyper::Error>>),
    Stalled,
}

impl Relay {
    /// A relay from `upstream` (speaking `family`) to a caller speaking `inbound`.
    pub fn new(
        upstream: ByteStream,
        family: WireFamily,
        mode: Mode,
        inbound: ApiFormat,
        model: &str,
        client_wants_usage: bool,
        meter: Meter,
    ) -> Self {
        let output = match (mode, inbound) {
            (Mode::Passthrough, _) => Output::Passthrough {
                inbound,
                client_wants_usage,
            },
            (Mode::Translate, ApiFormat::OpenAi) => Output::OpenAi(OpenAiEncoder::new(
                model,
                chrono::Utc::now().timestamp(),
                client_wants_usage,
            )),
            (Mode::Translate, ApiFormat::Anthropic) => {
                Output::Anthropic(AnthropicEncoder::new(model))
            }
        };
        Self {
            upstream,
            sse: SseDecoder::new(),
            decoder: StreamDecoder::new(family, model),
            output,
            meter,
            events: Vec::new(),
            complete: false,
            finished: false,
            failure: None,
            idle: Idle {
                limit: DEFAULT_IDLE_LIMIT,
                last: Instant::now(),
                timer: None,
            },
        }
    }

    /// Ends the stream once the upstream sends nothing for `limit` after the first token.
    pub fn with_idle_limit(mut self, limit: Duration) -> Self {
        self.idle.limit = limit;
        self
    }

    /// The upstream's next chunk; after the first token, [`Next::Stalled`] once nothing has
    /// come for the idle limit.
    async fn next_chunk(&mut self) -> Next {
        if !self.meter.has_first_token() {
            return Next::Chunk(self.upstream.next().await);
        }
        let idle = &mut self.idle;
        let timer = idle.timer.get_or_insert_with(|| {
            idle.last = Instant::now();
            Box::pin(tokio::time::sleep_until(idle.last + idle.limit))
        });
        loop {
            tokio::select! {
                biased;
                chunk = self.upstream.next() => {
                    idle.last = Instant::now();
                    return Next::Chunk(chunk);
                }
                () = timer.as_mut() => {
                    let due = idle.last + idle.limit;
                    if Instant::now() >= due {
                        return Next::Stalled;
                    }
                    timer.as_mut().reset(due);
                }
            }
        }
    }

    /// Reads until the first token (or the end), returning what to send first. The caller is not
    /// committed to a stream before this, so an upstream that fails first gets a proper error
    /// response (and, with routing, a fallback).
    pub async fn prefetch(&mut self) -> Result<Bytes, EarlyFailure> {
        let mut prefix = String::new();
        while !self.finished && !self.meter.has_first_token() {
            match self.next_text().await {
                Some(text) => prefix.push_str(&text),
                None => break,
            }
        }
        if let (Some(message), false) = (self.failure.as_ref(), self.meter.has_first_token()) {
            return Err(EarlyFailure {
                message: message.clone(),
            });
        }
        Ok(Bytes::from(prefix))
    }

    /// Gives up before anything reached the caller (e.g. no first token in time), recording the
    /// call with `status` and `kind`; dropping the relay then closes the upstream connection.
    pub fn abort(&mut self, status: u16, kind: FailureKind) {
        if !self.finished {
            self.finished = true;
            self.meter.usage(self.decoder.usage());
            self.meter.finish(status, Some(kind));
        }
    }

    /// The rest of the stream, as a body.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut relay| async move {
            relay
                .next_text()
                .await
                .map(|text| (Ok(Bytes::from(text)), relay))
        })
    }

    /// The next piece of output; `None` at the end.
    async fn next_text(&mut self) -> Option<String> {
        let mut out = String::new();
        while out.is_empty() {
            if self.finished {
                return None;
            }
            let chunk = match self.next_chunk().await {
                Next::Chunk(chunk) => chunk,
                Next::Stalled => {
                    let secs = self.idle.limit.as_secs_f64();
                    tracing::warn!(
                        idle_secs = secs,
                        "upstream stream stalled after its first token"
                    );
                    let message = format!("the upstream sent nothing for {secs} s mid-stream");
                    self.fail_as(&message, Failed::Stalled, &mut out);
                    continue;
                }
            };
            match chunk {
                Some(Ok(bytes)) => {
                    if self.sse.feed(&bytes, &mut self.events).is_err() {
                        self.fail("upstream sent an oversized stream event", &mut out);
                        continue;
                    }
                    self.handle_events(&mut out);
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "upstream stream broke");
                    self.fail("the upstream connection broke mid-stream", &mut out);
                }
                None => {
                    self.sse.finish(&mut self.events);
                    self.handle_events(&mut out);
                    if !self.complete {
                        self.fail(
                            "the upstream ended the stream before it was complete",
                            &mut out,
                        );
                    }
                    self.finish_ok(&mut out);
                }
            }
        }
        Some(out)
    }

    fn handle_events(&mut self, out: &mut String) {
        let events = std::mem::take(&mut self.events);
        for event in &events {
            if self.finished {
                break;
            }
            let decoded = self.decoder.decode(event);
            if let Some(message) = decoded.error {
                self.fail(&format!("upstream error: {message}"), out);
                break;
            }
            for e in &decoded.events {
                match e {
                    StreamEvent::Text(text) => {
                        self.meter.first_token();
                        self.meter.output_text(text);
                    }
                    StreamEvent::ToolCallStart { name, .. } => {
                        self.meter.first_token();
                        self.meter.output_text(name);
                    }
                    StreamEvent::ToolCallArgs { fragment, .. } => self.meter.output_text(fragment),
                    // The decoder's merged report says which counts are real (Anthropic's
                    // opening output count is a placeholder).
                    StreamEvent::Usage(_) => self.meter.usage(self.decoder.usage()),
                    _ => {}
                }
            }
            match &mut self.output {
                Output::Passthrough {
                    client_wants_usage, ..
                } => {
                    // flo2 asks OpenAI-style upstreams for a usage chunk; a caller that did not ask
                    // for one does not get it (code reading `choices[0]` would break on it).
                    let usage_only = !*client_wants_usage
                        && decoded
                            .events
                            .iter()
                            .all(|e| matches!(e, StreamEvent::Usage(_)))
                        && !decoded.events.is_empty();
                    if !usage_only {
                        // The event with the final usage (not Anthropic's opening
                        // `message_start`) also carries the call's cost.
                        let final_usage = event.event.as_deref() != Some("message_start")
                            && decoded
                                .events
                                .iter()
                                .any(|e| matches!(e, StreamEvent::Usage(_)));
                        let with_cost = final_usage
                            .then(|| {
                                self.meter.usage(self.decoder.usage());
                                self.meter.price_cost()
                            })
                            .flatten()
                            .and_then(|cost| encode::add_cost(&event.data, &cost.to_string()));
                        let data = with_cost.as_deref().unwrap_or(&event.data);
                        sse::encode(out, event.event.as_deref(), data);
                    }
                }
                Output::OpenAi(enc) => decoded.events.iter().for_each(|e| enc.event(e, out)),
                Output::Anthropic(enc) => decoded.events.iter().for_each(|e| enc.event(e, out)),
            }
            if decoded.done {
                self.complete = true;
                self.finish_ok(out);
            }
        }
        self.events = events;
        self.events.clear();
    }

    fn finish_ok(&mut self, out: &mut String) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.meter.usage(self.decoder.usage());
        let cost = self.meter.price_cost().map(|c| c.to_string());
        match &mut self.output {
            Output::Passthrough { .. } => {}
            Output::OpenAi(enc) => {
                cost.into_iter().for_each(|c| enc.set_cost_usd(c));
                enc.finish(out);
            }
            Output::Anthropic(enc) => {
                cost.into_iter().for_each(|c| enc.set_cost_usd(c));
                enc.finish(out);
            }
        }
        self.meter.finish(200, None);
    }

    fn fail(&mut self, message: &str, out: &mut String) {
        self.fail_as(message, Failed::Broken, out);
    }

    /// Ends the stream with an error event in the caller's format and meters it: 502
    /// `stream_interrupted` for a broken stream, 504 `stream_idle_timeout` for a stalled one.
    fn fail_as(&mut self, message: &str, how: Failed, out: &mut String) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.failure = Some(message.to_owned());
        let stalled = how == Failed::Stalled;
        let openai = |enc: &mut OpenAiEncoder, out: &mut String| {
            if stalled {
                enc.timeout(message, out);
            } else {
                enc.error(message, out);
            }
        };
        match &mut self.output {
            Output::Passthrough {
                inbound: ApiFormat::OpenAi,
                ..
            } => openai(&mut OpenAiEncoder::new("", 0, false), out),
            Output::OpenAi(enc) => openai(enc, out),
            Output::Passthrough {
                inbound: ApiFormat::Anthropic,
                ..
            } => anthropic_error(&mut AnthropicEncoder::new(""), stalled, message, out),
            Output::Anthropic(enc) => anthropic_error(enc, stalled, message, out),
        }
        self.meter.usage(self.decoder.usage());
        match how {
            Failed::Broken => self.meter.finish(502, Some(FailureKind::StreamInterrupted)),
            Failed::Stalled => self.meter.finish(504, Some(FailureKind::StreamIdleTimeout)),
        }
    }
}

/// How a stream failed after it had started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// The upstream broke, ended early or sent an error.
    Broken,
    /// The upstream sent nothing for the idle limit.
    Stalled,
}

fn anthropic_error(enc: &mut AnthropicEncoder, stalled: bool, message: &str, out: &mut String) {
    if stalled {
        enc.timeout(message, out);
    } else {
        enc.error(message, out);
    }
}
