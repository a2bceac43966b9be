//! Route policies: named virtual models an organization defines. A request whose `model` is a
//! route name goes to one of the route's targets, chosen by its strategy among the targets that
//! qualify, with fallback to the others and, for `race`, several targets at once.
//!
//! The policy is stored as JSON exactly as the management API accepts it; [`RoutePolicy::validate`]
//! runs before anything is stored, so the data plane only ever loads valid policies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model_id::ModelIdError;
use crate::{CredentialId, PricePerMtok, ProviderKind};

/// Most targets a route may have.
pub const MAX_TARGETS: usize = 16;
/// Longest route name.
pub const MAX_NAME: usize = 64;

/// How a route chooses among its qualifying targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest expected cost for this request at the organization's prices.
    Cheapest,
    /// Lowest observed latency (decaying average per target, with a little exploration).
    Fastest,
    /// In the order listed.
    Priority,
    /// At random, by weight.
    Weighted,
    /// Several targets at once; see [`RaceSettings`].
    Race,
}

impl Strategy {
    /// Every strategy, in the order the dashboard offers them.
    pub const ALL: [Strategy; 5] = [
        Strategy::Cheapest,
        Strategy::Fastest,
        Strategy::Priority,
        Strategy::Weighted,
        Strategy::Race,
    ];

    /// The name used in the API (its serde name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Cheapest => "cheapest",
            Strategy::Fastest => "fastest",
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::Race => "race",
        }
    }
}

/// One target of a route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTarget {
    /// Provider.
    #[schema(value_type = String)]
    pub provider: ProviderKind,
    /// The provider's model id.
    pub model: String,
    /// Relative weight for `weighted` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Only these credentials of the provider (default: all of the organization's keys for it,
    /// balanced as a pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub credentials: Vec<CredentialId>,
}

impl RouteTarget {
    /// `provider/model`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// Fallback across targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FallbackSettings {
    /// Try the next target after a retryable failure (default true).
    pub enabled: bool,
    /// Extra tries of the same target after a retryable failure, with jittered backoff
    /// (default 1).
    pub retries_per_target: u32,
    /// The whole request, all attempts included, must be answered (or, for streams, have its
    /// first token) within this many milliseconds (default 60,000).
    pub deadline_ms: u64,
    /// One attempt may wait this long for its answer (streams: for the first token) before it
    /// counts as a timeout (default 30,000).
    pub attempt_timeout_ms: u64,
}

impl Default for FallbackSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retries_per_target: 1,
            deadline_ms: 60_000,
            attempt_timeout_ms: 30_000,
        }
    }
}

/// How a race ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RaceMode {
    /// The first complete answer (streams: the first target to emit a token) wins.
    First,
    /// Wait for every target (up to the deadline) and choose by [`RacePick`].
    Best,
    /// Start the next target only when the previous one has not answered within the hedge delay.
    Hedged,
}

impl RaceMode {
    /// Every mode, default first.
    pub const ALL: [RaceMode; 3] = [RaceMode::First, RaceMode::Best, RaceMode::Hedged];

    /// The name used in the API (its serde name).
    pub const fn as_str(self) -> &'static str {
        match self {
            RaceMode::First => "first",
            RaceMode::Best => "best",
            RaceMode::Hedged => "hedged",
        }
    }
}

/// The rule that chooses the best answer of a `best` race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RacePick {
    /// The longest answer whose text is valid JSON; if none is, the longest answer.
    LongestJson,
    /// The shortest answer.
    Shortest,
    /// The longest answer.
    Longest,
}

/// Race settings (strategy `race`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RaceSettings {
    /// `first` (default), `best` or `hedged`.
    pub mode: RaceMode,
    /// For `best`: how to choose (default `longest_json`).
    pub pick: RacePick,
    /// For `hedged`: start the next target after this many milliseconds without an answer;
    /// absent: the target's observed 90th percentile latency (500 ms until it has history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge_delay_ms: Option<u64>,
    /// How many targets race at once (default: all qualifying, at most 4).
    pub fanout: u32,
}

impl Default for RaceSettings {
    fn default() -> Self {
        Self {
            mode: RaceMode::First,
            pick: RacePick::LongestJson,
            hedge_delay_ms: None,
            fanout: 4,
        }
    }
}

/// A route, as stored and as the management API reads and writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicy {
    /// How targets are chosen.
    pub strategy: Strategy,
    /// The targets, in order (`priority` tries them in this order).
    pub targets: Vec<RouteTarget>,
    /// The model savings are measured against, as `provider/model` (default: the first target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Skip targets whose input price is above this (USD per million tokens, decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_per_mtok: Option<String>,
    /// Skip targets whose output price is above this (USD per million tokens, decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_per_mtok: Option<String>,
    /// Output tokens `cheapest` assumes when the request sets no maximum (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output_tokens: Option<u32>,
    /// For `fastest`: the share of requests, in percent, sent to another qualifying target so a
    /// recovered or faster target is noticed (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore_percent: Option<u8>,
    /// Fallback settings.
    #[serde(default)]
    pub fallback: FallbackSettings,
    /// Race settings (used by strategy `race`).
    #[serde(default)]
    pub race: RaceSettings,
}

/// Why a route name or policy was refused: the field (a JSON path such as `targets[0].model`)
/// and a message that names it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RouteError {
    /// The refused field.
    pub field: String,
    /// Why, for people.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> RouteError {
    RouteError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a route name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit,
/// and never a provider name (so it cannot be read as `provider/model`).
pub fn validate_name(name: &str) -> Result<(), RouteError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let starts_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || !starts_ok {
        return Err(bad(
            "name",
            "a route name is 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
        ));
    }
    if name.parse::<ProviderKind>().is_ok() {
        return Err(bad(
            "name",
            format!("{name:?} is a provider name; pick another route name"),
        ));
    }
    Ok(())
}

impl RoutePolicy {
    /// Checks that every model id the route names (its targets and its baseline) is data, not
    /// URL syntax ([`crate::model_id`]). Part of [`RoutePolicy::validate`]; apart, so the
    /// management API can answer it as a refused value (422) rather than a malformed one.
    /// An empty or over-long id is a malformed field, which [`RoutePolicy::validate`] reports.
    pub fn check_model_ids(&self) -> Result<(), RouteError> {
        let refused = |provider, model: &str| match crate::model_id::check(provider, model) {
            Err(ModelIdError::Length) | Ok(()) => None,
            Err(e) => Some(e),
        };
        for (i, t) in self.targets.iter().enumerate() {
            if let Some(e) = refused(t.provider, &t.model) {
                return Err(bad(
                    format!("targets[{i}].model"),
                    format!("`targets[{i}].model`: {e}"),
                ));
            }
        }
        if let Some((p, m)) = self.baseline.as_deref().and_then(|b| b.split_once('/')) {
            if let Some(e) = p.parse::<ProviderKind>().ok().and_then(|p| refused(p, m)) {
                return Err(bad("baseline", format!("`baseline`: {e}")));
            }
        }
        Ok(())
    }

    /// Checks everything that can be checked without the organization's data.
    pub fn validate(&self) -> Result<(), RouteError> {
        self.check_model_ids()?;
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(bad(
                "targets",
                format!("`targets` must hold 1 to {MAX_TARGETS} targets"),
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            if t.model.trim().is_empty() || t.model.len() > crate::model_id::MAX_LEN {
                return Err(bad(
                    format!("targets[{i}].model"),
                    format!("`targets[{i}].model` must be a model id"),
                ));
            }
            if t.weight == Some(0) {
                return Err(bad(
                    format!("targets[{i}].weight"),
                    format!("`targets[{i}].weight` must be at least 1"),
                ));
            }
            if self.targets[..i].iter().any(|o| {
                o.provider == t.provider && o.model == t.model && o.credentials == t.credentials
            }) {
                return Err(bad(
                    format!("targets[{i}]"),
                    format!("`targets[{i}]` repeats an earlier target"),
                ));
            }
        }
        if let Some(b) = &self.baseline {
            let (p, m) = b
                .split_once('/')
                .ok_or_else(|| bad("baseline", "`baseline` must be provider/model"))?;
            p.parse::<ProviderKind>()
                .map_err(|e| bad("baseline", format!("`baseline`: {e}")))?;
            if m.is_empty() {
                return Err(bad("baseline", "`baseline` must be provider/model"));
            }
        }
        for (field, value) in [
            ("max_input_per_mtok", &self.max_input_per_mtok),
            ("max_output_per_mtok", &self.max_output_per_mtok),
        ] {
            if let Some(v) = value {
                PricePerMtok::parse(v).map_err(|e| bad(field, format!("`{field}`: {e}")))?;
            }
        }
        if self.explore_percent.is_some_and(|p| p > 50) {
            return Err(bad("explore_percent", "`explore_percent` must be 0 to 50"));
        }
        let f = &self.fallback;
        if !(100..=600_000).contains(&f.deadline_ms) {
            return Err(bad(
                "fallback.deadline_ms",
                "`fallback.deadline_ms` must be 100 to 600000",
            ));
        }
        if !(50..=600_000).contains(&f.attempt_timeout_ms) {
            return Err(bad(
                "fallback.attempt_timeout_ms",
                "`fallback.attempt_timeout_ms` must be 50 to 600000",
            ));
        }
        if f.retries_per_target > 5 {
            return Err(bad(
                "fallback.retries_per_target",
                "`fallback.retries_per_target` must be 0 to 5",
            ));
        }
        if self.strategy == Strategy::Race {
            if self.targets.len() < 2 {
                return Err(bad("targets", "a race needs at least two targets"));
            }
            if !(2..=8).contains(&self.race.fanout) {
                return Err(bad("race.fanout", "`race.fanout` must be 2 to 8"));
            }
            if self.race.hedge_delay_ms.is_some_and(|d| d > 600_000) {
                return Err(bad(
                    "race.hedge_delay_ms",
                    "`race.hedge_delay_ms` must be at most 600000",
                ));
            }
        }
        Ok(())
    }

    /// The baseline model: `baseline` if set, else the first target.
    pub fn baseline_model(&self) -> Option<(ProviderKind, String)> {
        match &self.baseline {
            Some(b) => {
                let (p, m) = b.split_once('/')?;
                Some((p.parse().ok()?, m.to_owned()))
            }
            None => self.targets.first().map(|t| (t.provider, t.model.clone())),
        }
    }

    /// The price ceilings, parsed (validated policies always parse).
    pub fn max_prices(&self) -> (Option<PricePerMtok>, Option<PricePerMtok>) {
        let parse = |v: &Option<String>| v.as_deref().and_then(|v| PricePerMtok::parse(v).ok());
        (
            parse(&self.max_input_per_mtok),
            parse(&self.max_output_per_mtok),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<RoutePolicy, String> {
        let p: RoutePolicy = serde_json::from_str(json).map_err(|e| e.to_string())?;
        p.validate().map_err(|e| e.message)?;
        Ok(p)
    }

    #[test]
    fn a_minimal_policy_gets_defaults() {
        let p = policy(
            r#"{"strategy":"priority","targets":[{"provider":"openai","model":"gpt-4o-mini"}]}"#,
        )
        .unwrap();
        assert!(p.fallback.enabled);
        assert_eq!(p.race.mode, RaceMode::First);
        assert_eq!(
            p.baseline_model(),
            Some((ProviderKind::OpenAi, "gpt-4o-mini".into()))
        );
    }

    #[test]
    fn a_refusal_carries_its_field_as_a_json_path() {
        let field = |json: &str| {
            let p: RoutePolicy = serde_json::from_str(json).unwrap();
            p.validate().unwrap_err().field
        };
        assert_eq!(
            field(
                r#"{"strategy":"weighted","targets":[{"provider":"openai","model":"a","weight":0}]}"#
            ),
            "targets[0].weight"
        );
        assert_eq!(
            field(
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"}],"fallback":{"deadline_ms":1}}"#
            ),
            "fallback.deadline_ms"
        );
        assert_eq!(
            field(r#"{"strategy":"race","targets":[{"provider":"openai","model":"a"}]}"#),
            "targets"
        );
        assert_eq!(validate_name("openai").unwrap_err().field, "name");
    }

    #[test]
    fn bad_policies_name_the_field() {
        for (json, field) in [
            (r#"{"strategy":"priority","targets":[]}"#, "targets"),
            (
                r#"{"strategy":"race","targets":[{"provider":"openai","model":"a"}]}"#,
                "race",
            ),
            (
                r#"{"strategy":"weighted","targets":[{"provider":"openai","model":"a","weight":0}]}"#,
                "weight",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"}],"max_input_per_mtok":"x"}"#,
                "max_input_per_mtok",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"}],"baseline":"gpt"}"#,
                "baseline",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"},{"provider":"openai","model":"a"}]}"#,
                "repeats",
            ),
            (
                r#"{"strategy":"sometimes","targets":[]}"#,
                "unknown variant",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"gemini","model":"zzz/../gemini-2.5-pro"}]}"#,
                "targets[0].model",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"},{"provider":"openrouter","model":"a/../b"}]}"#,
                "targets[1].model",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"}],"baseline":"gemini/x?key=1"}"#,
                "baseline",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"a"}],"extra":1}"#,
                "unknown field",
            ),
        ] {
            let err = policy(json).unwrap_err();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn route_names() {
        assert!(validate_name("fast-chat").is_ok());
        assert!(validate_name("v2.cheap_1").is_ok());
        for bad in ["", "Fast", "a/b", "-x", "openai", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_agree_with_serde() {
        for s in Strategy::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in RaceMode::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }
}
