//! One usage record per upstream call. A [`Meter`] is created when the call starts and writes
//! its record exactly once: when the call is finished explicitly, or — if the caller went away
//! mid-stream and the response was dropped — from `Drop`, with status 499.
//!
//! Tokens are the provider's count. Where an upstream accepted the call but never reported a
//! count (a stream cut short before its usage event), the record holds the documented estimate
//! of [`flo2_llm::estimate`] for the missing kind and says so with `tokens_estimated`.

use std::time::Instant;

use chrono::Utc;
use flo2_core::{AttemptRole, FailureKind, ModelPrice, PicoUsd, Tokens};
use flo2_llm::common::{Usage, UsageReport};
use flo2_store::UsageRecord;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::ApiFormat;
use crate::metering::usage_sink::UsageSink;
use crate::state::target::Target;

/// Status recorded when the caller disconnected before the answer was complete (nginx's code).
pub const CLIENT_CLOSED: i64 = 499;

/// Meters one upstream call.
pub struct Meter {
    sink: UsageSink,
    price: Option<ModelPrice>,
    baseline: Option<ModelPrice>,
    record: Option<UsageRecord>,
    started: Instant,
    first_token: Option<Instant>,
    usage: Usage,
    /// Which counts the provider reported; the others are estimated (an explicit 0 is a count).
    input_reported: bool,
    output_reported: bool,
    /// Estimated prompt tokens, used only if the provider reports none.
    input_estimate: u64,
    /// Characters of text and tool arguments streamed so far (for the output estimate).
    output_chars: usize,
    /// The upstream answered 2xx: it will bill the call, so missing counts are estimated.
    accepted: bool,
    /// What a record written from `Drop` says happened.
    cancel_kind: FailureKind,
    /// A cancelled attempt still bills the prompt (race participants: the upstream had it).
    bill_prompt_on_cancel: bool,
}

impl Meter {
    /// Starts metering a call for `caller` to `target`.
    pub fn start(
        sink: &UsageSink,
        caller: &Caller,
        inbound: ApiFormat,
        request_id: Uuid,
        requested: &str,
        target: &Target,
    ) -> Self {
        let mut meter =
            Self::start_for_org(sink, caller.key.org, inbound, request_id, requested, target);
        if let Some(r) = meter.record.as_mut() {
            r.team_id = Some(caller.key.team);
            r.gateway_key_id = Some(caller.key.id);
        }
        meter
    }

    /// Starts metering a call made for `org` by flo2 itself (a provider-key test from the
    /// dashboard), with no team or gateway key.
    pub fn start_for_org(
        sink: &UsageSink,
        org: flo2_core::OrgId,
        inbound: ApiFormat,
        request_id: Uuid,
        requested: &str,
        target: &Target,
    ) -> Self {
        let now = Utc::now();
        Self {
            sink: sink.clone(),
            price: target.price.clone(),
            // Without a route, the baseline is the model that was asked for: no saving.
            baseline: target.price.clone(),
            record: Some(UsageRecord {
                id: Uuid::now_v7(),
                org_id: org,
                team_id: None,
                gateway_key_id: None,
                request_id,
                attempt: 1,
                attempt_role: AttemptRole::Primary.as_str().into(),
                inbound_api: inbound.as_str().into(),
                requested_model: requested.to_owned(),
                route: None,
                provider: target.provider.as_str().into(),
                model: target.model.clone(),
                credential_id: Some(target.credential.id),
                status: 0,
                error_kind: None,
                input_tokens: 0,
                output_tokens: 0,
                cached_input_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
                cost_picousd: 0,
                baseline_cost_picousd: 0,
                tokens_estimated: false,
                unpriced: target.price.is_none(),
                cache_hit: false,
                latency_ms: 0,
                ttft_ms: None,
                started_at: now,
                finished_at: now,
            }),
            started: Instant::now(),
            first_token: None,
            usage: Usage::default(),
            input_reported: false,
            output_reported: false,
            input_estimate: 0,
            output_chars: 0,
            accepted: false,
            cancel_kind: FailureKind::ClientClosed,
            bill_prompt_on_cancel: false,
        }
    }

    /// Numbers this attempt within its request and says what role it plays.
    pub fn attempt(&mut self, number: u32, role: AttemptRole) {
        if let Some(r) = self.record.as_mut() {
            r.attempt = i64::from(number);
            r.attempt_role = role.as_str().into();
        }
        if role == AttemptRole::Race {
            // A race participant dropped before it finished lost the race; the upstream already
            // had its prompt, so the estimate of it is recorded.
            self.cancel_kind = FailureKind::RaceCancelled;
            self.bill_prompt_on_cancel = true;
        }
    }

    /// Records that the call served route `name`, whose baseline model is priced `baseline`.
    pub fn route(&mut self, name: &str, baseline: Option<ModelPrice>) {
        if let Some(r) = self.record.as_mut() {
            r.route = Some(name.to_owned());
        }
        self.baseline = baseline;
    }

    /// The estimated prompt size, used if the provider never reports the input tokens.
    pub fn estimate_input(&mut self, tokens: u64) {
        self.input_estimate = tokens;
    }

    /// Notes that the upstream accepted the call (answered 2xx).
    pub fn accepted(&mut self) {
        self.accepted = true;
    }

    /// Counts streamed output text, for an estimate if the stream ends without usage.
    pub fn output_text(&mut self, text: &str) {
        self.output_chars = self.output_chars.saturating_add(text.chars().count());
    }

    /// Notes the first token of a stream (once).
    pub fn first_token(&mut self) {
        self.first_token.get_or_insert_with(Instant::now);
    }

    /// True once a token has been seen.
    pub fn has_first_token(&self) -> bool {
        self.first_token.is_some()
    }

    /// Updates the token counts (the last report wins). A plain [`Usage`] is a complete report.
    pub fn usage(&mut self, report: impl Into<UsageReport>) {
        let report = report.into();
        self.usage = report.usage;
        self.input_reported = report.input_reported;
        self.output_reported = report.output_reported;
    }

    /// The provider's counts, with estimates filling the kinds it never reported; and whether any
    /// estimate was used. A reported count is kept as it is, zero included; an output count not
    /// reported (Anthropic's `message_start` placeholder of 1 in a stream cut before its
    /// `message_delta`) is replaced by the estimate from the text actually delivered.
    fn tokens(&self) -> (Tokens, bool) {
        let u = &self.usage;
        let output_estimate = flo2_llm::estimate::tokens_for_chars(self.output_chars);
        let estimate_input = self.accepted && !self.input_reported && self.input_estimate > 0;
        let estimate_output = self.accepted && !self.output_reported;
        let tokens = Tokens {
            input: if estimate_input {
                self.input_estimate
            } else {
                u.input
            },
            output: if estimate_output {
                output_estimate
            } else {
                u.output
            },
            cached_input: u.cached_input,
            cache_write: u.cache_write,
            reasoning: u.reasoning,
        };
        // An output estimate of nothing delivered is 0, not a guess worth flagging.
        (
            tokens,
            estimate_input || (estimate_output && output_estimate > 0),
        )
    }

    /// The exact cost of the tokens seen so far at the call's price.
    pub fn cost(&self) -> PicoUsd {
        self.price_cost().unwrap_or(PicoUsd::ZERO)
    }

    /// The cost, or `None` when the organization has no price for the model.
    pub fn price_cost(&self) -> Option<PicoUsd> {
        self.price.as_ref().map(|p| p.cost(&self.tokens().0))
    }

    /// Writes the record with `status` (and `error_kind` for failures).
    pub fn finish(&mut self, status: u16, error_kind: Option<FailureKind>) {
        self.write(i64::from(status), error_kind);
    }

    fn write(&mut self, status: i64, error_kind: Option<FailureKind>) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        record.status = status;
        record.error_kind = error_kind.map(|kind| kind.as_str().into());
        let (tokens, estimated) = self.tokens();
        record.input_tokens = to_i64(tokens.input);
        record.output_tokens = to_i64(tokens.output);
        record.cached_input_tokens = to_i64(tokens.cached_input);
        record.cache_write_tokens = to_i64(tokens.cache_write);
        record.reasoning_tokens = to_i64(tokens.reasoning);
        record.tokens_estimated = estimated;
        record.cost_picousd = self.cost().to_i64();
        record.baseline_cost_picousd = self
            .baseline
            .as_ref()
            .map_or(PicoUsd::ZERO, |p| p.cost(&tokens))
            .to_i64();
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        record.latency_ms = ms(self.started.elapsed());
        record.ttft_ms = self.first_token.map(|t| ms(t.duration_since(self.started)));
        record.finished_at = Utc::now();
        self.sink.record(record);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.record.is_some() {
            if self.bill_prompt_on_cancel {
                self.accepted = true;
                // A race loser is pure extra spend: without the race it would not exist, so it
                // saves nothing against the baseline (its savings are minus its cost).
                self.baseline = None;
            }
            self.write(CLIENT_CLOSED, Some(self.cancel_kind));
        }
    }
}
