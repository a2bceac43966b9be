//! A failed attempt, classified once where it happened: what kind of failure it was, the error
//! the caller gets if nothing else works, and the upstream's `retry-after`. Dispatch asks it
//! whether another try may succeed ([`Failure::retryable`]) and what it teaches the replica's
//! health view ([`Failure::teaches_health`]); nothing re-derives that from strings.

use std::time::Duration;

use axum::http::HeaderValue;
use flo2_core::FailureKind;

use crate::error::GatewayError;
use crate::state::health::Outcome;

/// Statuses worth trying again or elsewhere: the upstream, not the request, is the problem.
pub(crate) const RETRYABLE: &[u16] = &[408, 429, 500, 502, 503, 504, 529];

/// A failed attempt.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// What the caller gets if nothing else works (its status is the attempt's status).
    pub error: GatewayError,
    /// The upstream's `retry-after`.
    pub retry_after: Option<Duration>,
    /// `provider/model` of the target that failed.
    pub target: String,
    /// The upstream said it is overloaded, whatever the status: worth another try.
    pub overloaded: bool,
}

impl Failure {
    /// A failure of `kind` at `target`, answered to the caller with `error`.
    pub fn new(kind: FailureKind, error: GatewayError, target: &str) -> Self {
        Self {
            kind,
            error,
            retry_after: None,
            target: target.to_owned(),
            overloaded: false,
        }
    }

    /// The attempt's HTTP status.
    pub fn status(&self) -> u16 {
        self.error.status().as_u16()
    }

    /// Another try (here or at another target) may succeed: the upstream, not the request, is
    /// the problem.
    pub fn retryable(&self) -> bool {
        self.overloaded || RETRYABLE.contains(&self.status())
    }

    /// The target cannot serve this request at all (a feature it cannot express): the next
    /// target may, and nothing was sent.
    pub fn unsupported(&self) -> bool {
        self.kind == FailureKind::Unsupported
    }

    /// 429: the key is rate-limited; the target may be fine.
    pub fn rate_limited(&self) -> bool {
        self.status() == 429
    }

    /// What this failure tells the health view about the target and key, after `took`: a
    /// rate limit rests the key, an upstream fault counts against the target, and a fault of the
    /// request itself says nothing about either.
    pub fn teaches_health(&self, took: Duration) -> Option<Outcome> {
        if self.rate_limited() {
            Some(Outcome::RateLimited(self.retry_after))
        } else if self.retryable() {
            Some(Outcome::Failure(took))
        } else {
            None
        }
    }

    /// Why, in a few words, for the trace (`x-flo2-attempt-errors`) and logs.
    pub fn reason(&self) -> std::borrow::Cow<'static, str> {
        match self.kind {
            FailureKind::Unsupported => "cannot express the request".into(),
            // A connect timeout: the trace has always called it a timeout.
            FailureKind::Unreachable if self.status() == 504 => {
                FailureKind::Timeout.as_str().into()
            }
            FailureKind::Unreachable => "cannot connect".into(),
            FailureKind::Timeout => FailureKind::Timeout.as_str().into(),
            FailureKind::UpstreamError => self.status().to_string().into(),
            FailureKind::UpstreamBody => "broken answer".into(),
            FailureKind::UpstreamMalformed => "malformed answer".into(),
            FailureKind::StreamFailedEarly => "stream failed before the first token".into(),
            FailureKind::StreamInterrupted => "stream interrupted".into(),
            FailureKind::StreamIdleTimeout => "stream idle timeout".into(),
            FailureKind::ClientClosed => "the caller went away".into(),
            FailureKind::RaceCancelled => "lost the race".into(),
        }
    }
}

/// `retry-after` in seconds (HTTP dates are rare from LLM providers and are ignored).
pub(crate) fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let secs: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (0.0..86_400.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiFormat;
    use axum::http::StatusCode;

    fn failure(kind: FailureKind, status: u16) -> Failure {
        let status = StatusCode::from_u16(status).unwrap();
        Failure::new(
            kind,
            GatewayError::with_status(ApiFormat::OpenAi, status, "x"),
            "openai/m",
        )
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("2")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-1")), None);
    }

    #[test]
    fn what_a_failure_teaches() {
        let took = Duration::from_millis(5);
        let cases = [
            // (kind, status, retryable, teaches)
            (FailureKind::UpstreamError, 429, true, "rate limited"),
            (FailureKind::UpstreamError, 503, true, "failure"),
            (FailureKind::Timeout, 504, true, "failure"),
            (FailureKind::UpstreamError, 400, false, "nothing"),
            (FailureKind::Unsupported, 400, false, "nothing"),
        ];
        for (kind, status, retryable, teaches) in cases {
            let f = failure(kind, status);
            assert_eq!(f.retryable(), retryable, "{kind} {status}");
            let taught = match f.teaches_health(took) {
                Some(Outcome::RateLimited(_)) => "rate limited",
                Some(Outcome::Failure(_)) => "failure",
                Some(Outcome::Success(_)) => "success",
                None => "nothing",
            };
            assert_eq!(taught, teaches, "{kind} {status}");
        }
        let mut overloaded = failure(FailureKind::UpstreamError, 400);
        overloaded.overloaded = true;
        assert!(overloaded.retryable(), "an overloaded answer is retried");
        assert!(failure(FailureKind::Unsupported, 400).unsupported());
    }

    #[test]
    fn reasons_read_as_the_trace_always_did() {
        assert_eq!(failure(FailureKind::Unreachable, 504).reason(), "timeout");
        assert_eq!(
            failure(FailureKind::Unreachable, 502).reason(),
            "cannot connect"
        );
        assert_eq!(failure(FailureKind::UpstreamError, 503).reason(), "503");
    }
}
