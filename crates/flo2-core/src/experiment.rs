//! Experiments: an A/B test on a route's real traffic, each request sent to one of 2 to 8 arms
//! (the first is the control) and a sample of the answers scored by an LLM judge. This module is
//! the definition as the API takes it, its checks, its states, and the sticky assignment of a
//! request to an arm; running and judging live in the gateway, the numbers in [`crate::stats`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model_id;
use crate::money::PicoUsd;
use crate::provider::ProviderKind;

/// Most arms an experiment may have.
pub const MAX_ARMS: usize = 8;
/// Longest experiment or arm name.
pub const MAX_NAME: usize = 64;
/// Longest rubric.
pub const MAX_RUBRIC: usize = 8_000;
/// Longest retention of judged samples.
pub const MAX_RETAIN_DAYS: u32 = 365;

/// The placeholder a rubric puts the judged answer in.
pub const ANSWER: &str = "{{answer}}";
/// The placeholder a rubric puts the request (the task) in.
pub const TASK: &str = "{{task}}";

/// The rubric used when none is given: general helpfulness, on a 1-10 scale.
pub const GENERAL_RUBRIC: &str = "You are grading an AI assistant's answer to a user's request.\n\
Judge how well the answer serves the request: correctness first, then completeness, clarity and \
concision. Do not reward length for its own sake.\n\n\
Request:\n{{task}}\n\nAnswer:\n{{answer}}\n\n\
Give a score from 1 (useless or wrong) to 10 (as good as an expert's answer).";

/// A rubric for code: correctness and whether it would run, then quality.
pub const CODING_RUBRIC: &str = "You are reviewing an AI assistant's answer to a programming \
request.\nJudge above all whether the code is correct and would work as asked (right APIs, edge \
cases, no invented functions), then whether it is idiomatic, safe and clearly explained. Do not \
reward length for its own sake.\n\n\
Request:\n{{task}}\n\nAnswer:\n{{answer}}\n\n\
Give a score from 1 (wrong or would not run) to 10 (correct, idiomatic, what a senior engineer \
would write).";

/// How requests are assigned to arms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// Each request on its own.
    #[default]
    Request,
    /// All requests of one gateway key on one arm.
    ApiKey,
    /// All requests of one end user on one arm: the `x-flo2-subject` header, else the OpenAI
    /// `user` field or Anthropic `metadata.user_id` (a request naming no subject is assigned on
    /// its own).
    Subject,
}

/// How the judge scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JudgeMode {
    /// A 1-10 score per judged answer.
    #[default]
    Pointwise,
    /// A judged request also runs on the control arm in the background (role `shadow`), and
    /// the judge compares the two answers in both orders.
    Pairwise,
}

/// One arm as the API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmInput {
    /// A name unique within the experiment (shown in results and usage).
    pub name: String,
    /// Provider (checked, so an unknown one is refused naming this field).
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// Only these of the organization's keys for the provider (default: all, as a pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub credentials: Vec<crate::CredentialId>,
    /// Percent of the experiment's requests (the arms' shares sum to 100).
    pub share: u32,
}

/// Who judges: a model, or a route (which then picks the model and falls back as routes do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JudgeInput {
    /// `{"provider": ..., "model": ...}`.
    Model {
        /// Provider.
        provider: String,
        /// The provider's model id.
        model: String,
    },
    /// A route's name.
    Route(String),
}

/// An experiment as the API takes it (create, and edit while a draft).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentInput {
    /// A name unique in the organization.
    pub name: String,
    /// The route the experiment runs on; apps keep calling it unchanged.
    pub route: String,
    /// 2 to 8 arms, the first being the control.
    pub arms: Vec<ArmInput>,
    /// How requests are assigned to arms (default `request`).
    #[serde(default)]
    pub assignment: Assignment,
    /// Who judges.
    pub judge: JudgeInput,
    /// The judge's prompt, with `{{task}}` and `{{answer}}` (default: the general rubric).
    #[serde(default)]
    pub rubric: Option<String>,
    /// `pointwise` (default) or `pairwise`.
    #[serde(default)]
    pub mode: JudgeMode,
    /// Percent of the experiment's requests that are judged (0-100).
    #[serde(default)]
    pub sample_percent: u32,
    /// Judging stops for the day once its cost reaches this many USD (a decimal string).
    #[serde(default)]
    pub judge_budget_usd_per_day: Option<String>,
    /// Days judged prompts and answers are kept (default 0: deleted once judged).
    #[serde(default)]
    pub retain_samples_days: u32,
}

/// A checked arm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// Name.
    pub name: String,
    /// Provider.
    pub provider: ProviderKind,
    /// Model id.
    pub model: String,
    /// Keys to use (empty: all of the provider's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<crate::CredentialId>,
    /// Percent of requests.
    pub share: u32,
}

/// A checked judge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judge {
    /// A model.
    Model {
        /// Provider.
        provider: ProviderKind,
        /// Model id.
        model: String,
    },
    /// A route.
    Route(String),
}

/// A checked experiment definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentSpec {
    /// Name.
    pub name: String,
    /// The route.
    pub route: String,
    /// The arms, control first.
    pub arms: Vec<Arm>,
    /// Assignment unit.
    pub assignment: Assignment,
    /// Judge.
    pub judge: Judge,
    /// Rubric.
    pub rubric: String,
    /// Mode.
    pub mode: JudgeMode,
    /// Percent judged.
    pub sample_percent: u32,
    /// Daily judge budget (`None`: no limit), stored as its exact USD decimal.
    #[serde(with = "usd_text")]
    pub judge_budget_per_day: Option<PicoUsd>,
    /// Days samples are kept.
    pub retain_samples_days: u32,
}

/// An optional amount as its exact USD decimal text (never a float).
mod usd_text {
    use crate::money::PicoUsd;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<PicoUsd>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_some(&p.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PicoUsd>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| PicoUsd::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A refused definition: the field (a JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct SpecError {
    /// The JSON path of the refused value, e.g. `arms[1].share`.
    pub field: String,
    /// Why.
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

fn check_name(field: &str, name: &str) -> Result<String, SpecError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(refuse(
            field,
            format!("a name is 1 to {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse(field, "a name holds no control characters"));
    }
    Ok(name.to_owned())
}

fn check_model(
    field: &str,
    provider: &str,
    model: &str,
) -> Result<(ProviderKind, String), SpecError> {
    let kind: ProviderKind = provider.parse().map_err(|_| {
        refuse(
            format!("{field}.provider"),
            format!("unknown provider {provider:?}"),
        )
    })?;
    model_id::check(kind, model).map_err(|e| refuse(format!("{field}.model"), e.to_string()))?;
    Ok((kind, model.to_owned()))
}

impl ExperimentInput {
    /// Checks everything that needs no organization context (keys held, other experiments on
    /// the route and the route's existence are the caller's to check).
    pub fn check(&self) -> Result<ExperimentSpec, SpecError> {
        let name = check_name("name", &self.name)?;
        let route = check_name("route", &self.route)?;
        if !(2..=MAX_ARMS).contains(&self.arms.len()) {
            return Err(refuse(
                "arms",
                format!(
                    "an experiment has 2 to {MAX_ARMS} arms, not {}",
                    self.arms.len()
                ),
            ));
        }
        let mut arms = Vec::with_capacity(self.arms.len());
        for (i, arm) in self.arms.iter().enumerate() {
            let field = format!("arms[{i}]");
            let name = check_name(&format!("{field}.name"), &arm.name)?;
            if arms.iter().any(|a: &Arm| a.name == name) {
                return Err(refuse(
                    format!("{field}.name"),
                    format!("two arms are named {name:?}"),
                ));
            }
            let (provider, model) = check_model(&field, &arm.provider, &arm.model)?;
            if !(1..=100).contains(&arm.share) {
                return Err(refuse(
                    format!("{field}.share"),
                    "a share is 1 to 100 percent",
                ));
            }
            arms.push(Arm {
                name,
                provider,
                model,
                credentials: arm.credentials.clone(),
                share: arm.share,
            });
        }
        let total: u32 = arms.iter().map(|a| a.share).sum();
        if total != 100 {
            return Err(refuse(
                "arms",
                format!("the arms' shares sum to {total}, not 100"),
            ));
        }
        let judge = match &self.judge {
            JudgeInput::Model { provider, model } => {
                let (provider, model) = check_model("judge", provider, model)?;
                Judge::Model { provider, model }
            }
            JudgeInput::Route(name) => Judge::Route(check_name("judge", name)?),
        };
        let rubric = self
            .rubric
            .clone()
            .unwrap_or_else(|| GENERAL_RUBRIC.to_owned());
        if !rubric.contains(ANSWER) {
            return Err(refuse("rubric", format!("a rubric must contain {ANSWER}")));
        }
        if rubric.chars().count() > MAX_RUBRIC {
            return Err(refuse(
                "rubric",
                format!("a rubric is at most {MAX_RUBRIC} characters"),
            ));
        }
        if self.sample_percent > 100 {
            return Err(refuse(
                "sample_percent",
                "a share of requests is 0 to 100 percent",
            ));
        }
        let judge_budget_per_day = match &self.judge_budget_usd_per_day {
            None => None,
            Some(text) => Some(
                PicoUsd::parse(text)
                    .map_err(|e| refuse("judge_budget_usd_per_day", e.to_string()))?,
            ),
        };
        if self.retain_samples_days > MAX_RETAIN_DAYS {
            return Err(refuse(
                "retain_samples_days",
                format!("samples are kept at most {MAX_RETAIN_DAYS} days"),
            ));
        }
        Ok(ExperimentSpec {
            name,
            route,
            arms,
            assignment: self.assignment,
            judge,
            rubric,
            mode: self.mode,
            sample_percent: self.sample_percent,
            judge_budget_per_day,
            retain_samples_days: self.retain_samples_days,
        })
    }
}

/// Where an experiment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentState {
    /// Defined, editable, serving no traffic.
    Draft,
    /// Assigning traffic and judging.
    Running,
    /// Holding: the route serves as without the experiment; results are kept.
    Paused,
    /// Over: results are kept, nothing changes any more.
    Stopped,
}

/// A change of state the API asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// `start` (also resumes a paused experiment).
    Start,
    /// `pause`.
    Pause,
    /// `stop`.
    Stop,
}

impl ExperimentState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExperimentState::Draft => "draft",
            ExperimentState::Running => "running",
            ExperimentState::Paused => "paused",
            ExperimentState::Stopped => "stopped",
        }
    }

    /// The state after `t`, or `None` when this state does not allow it
    /// (`draft → running ⇄ paused → stopped`; any state but `stopped` may stop).
    pub fn after(self, t: Transition) -> Option<ExperimentState> {
        use ExperimentState::*;
        match (self, t) {
            (Draft | Paused, Transition::Start) => Some(Running),
            (Running, Transition::Pause) => Some(Paused),
            (Draft | Running | Paused, Transition::Stop) => Some(Stopped),
            _ => None,
        }
    }
}

impl std::str::FromStr for ExperimentState {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        [
            ExperimentState::Draft,
            ExperimentState::Running,
            ExperimentState::Paused,
            ExperimentState::Stopped,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| refuse("state", format!("unknown state {s:?}")))
    }
}

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finish to spread its bits): the same on
/// every replica and every Rust version, which `std`'s hasher does not promise.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl ExperimentSpec {
    /// The arm for assignment unit `unit` (a key id, a subject, or a request id): sticky, since
    /// the same experiment and unit always hash to the same point of the shares.
    pub fn arm_for(&self, experiment: uuid::Uuid, unit: &[u8]) -> usize {
        let point = stable_hash(&[experiment.as_bytes(), unit]) % 10_000;
        let mut upto = 0u64;
        for (i, arm) in self.arms.iter().enumerate() {
            upto += u64::from(arm.share) * 100;
            if point < upto {
                return i;
            }
        }
        self.arms.len().saturating_sub(1)
    }

    /// Whether a request is judged: a stable draw of `sample_percent` (per request id, so a
    /// retried delivery of the same request decides the same way).
    pub fn sampled(&self, experiment: uuid::Uuid, request: uuid::Uuid) -> bool {
        let point = stable_hash(&[b"sample", experiment.as_bytes(), request.as_bytes()]) % 100;
        point < u64::from(self.sample_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: serde_json::Value) -> ExperimentInput {
        serde_json::from_value(value).unwrap()
    }

    fn valid() -> serde_json::Value {
        json!({
            "name": "mini vs haiku",
            "route": "support",
            "arms": [
                {"name": "A", "provider": "openai", "model": "gpt-4o-mini", "share": 50},
                {"name": "B", "provider": "anthropic", "model": "claude-haiku-4-5", "share": 50}
            ],
            "judge": {"provider": "openai", "model": "gpt-4o"},
            "sample_percent": 20
        })
    }

    #[test]
    fn a_valid_definition_gets_its_defaults() {
        let spec = input(valid()).check().unwrap();
        assert_eq!(spec.arms.len(), 2);
        assert_eq!(spec.assignment, Assignment::Request);
        assert_eq!(spec.mode, JudgeMode::Pointwise);
        assert_eq!(spec.rubric, GENERAL_RUBRIC);
        assert!(GENERAL_RUBRIC.contains(TASK) && CODING_RUBRIC.contains(ANSWER));
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "shares",
                json!({"arms": [
                {"name": "A", "provider": "openai", "model": "m", "share": 50},
                {"name": "B", "provider": "openai", "model": "n", "share": 40}]}),
                "arms",
            ),
            (
                "one arm",
                json!({"arms": [{"name": "A", "provider": "openai", "model": "m", "share": 100}]}),
                "arms",
            ),
            (
                "provider",
                json!({"arms": [
                {"name": "A", "provider": "openai", "model": "m", "share": 50},
                {"name": "B", "provider": "nope", "model": "n", "share": 50}]}),
                "arms[1].provider",
            ),
            (
                "model",
                json!({"arms": [
                {"name": "A", "provider": "openai", "model": "../x", "share": 50},
                {"name": "B", "provider": "openai", "model": "n", "share": 50}]}),
                "arms[0].model",
            ),
            (
                "twin names",
                json!({"arms": [
                {"name": "A", "provider": "openai", "model": "m", "share": 50},
                {"name": "A", "provider": "openai", "model": "n", "share": 50}]}),
                "arms[1].name",
            ),
            (
                "zero share",
                json!({"arms": [
                {"name": "A", "provider": "openai", "model": "m", "share": 0},
                {"name": "B", "provider": "openai", "model": "n", "share": 100}]}),
                "arms[0].share",
            ),
            ("rubric", json!({"rubric": "rate {{task}}"}), "rubric"),
            ("sample", json!({"sample_percent": 101}), "sample_percent"),
            (
                "judge",
                json!({"judge": {"provider": "nope", "model": "m"}}),
                "judge.provider",
            ),
            (
                "budget",
                json!({"judge_budget_usd_per_day": "-1"}),
                "judge_budget_usd_per_day",
            ),
            ("name", json!({"name": " "}), "name"),
        ];
        for (case, patch, field) in cases {
            let mut body = valid();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = input(body).check().unwrap_err();
            assert_eq!(err.field, field, "{case}: {err}");
        }
    }

    #[test]
    fn a_checked_spec_round_trips_with_its_budget_exact() {
        let mut body = valid();
        body["judge_budget_usd_per_day"] = json!("2.500000000001");
        let spec = input(body).check().unwrap();
        assert_eq!(spec.judge_budget_per_day, Some(PicoUsd(2_500_000_000_001)));
        let text = serde_json::to_string(&spec).unwrap();
        assert!(text.contains("\"2.500000000001\""), "{text}");
        let back: ExperimentSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn a_route_judge_reads_as_a_name() {
        let mut body = valid();
        body["judge"] = json!("judges");
        assert_eq!(
            input(body).check().unwrap().judge,
            Judge::Route("judges".into())
        );
    }

    #[test]
    fn states_move_only_as_allowed() {
        use ExperimentState::*;
        assert_eq!(Draft.after(Transition::Start), Some(Running));
        assert_eq!(Running.after(Transition::Pause), Some(Paused));
        assert_eq!(Paused.after(Transition::Start), Some(Running));
        assert_eq!(Paused.after(Transition::Stop), Some(Stopped));
        assert_eq!(Draft.after(Transition::Pause), None);
        assert_eq!(Stopped.after(Transition::Start), None);
        for s in [Draft, Running, Paused, Stopped] {
            assert_eq!(s.as_str().parse::<ExperimentState>().unwrap(), s);
        }
    }

    #[test]
    fn assignment_is_sticky_and_follows_the_shares() {
        let mut body = valid();
        body["arms"][0]["share"] = json!(30);
        body["arms"][1]["share"] = json!(70);
        let spec = input(body).check().unwrap();
        let id = uuid::Uuid::from_u128(7);
        let unit = b"user-42";
        let first = spec.arm_for(id, unit);
        assert!((0..1_000).all(|_| spec.arm_for(id, unit) == first));
        let mut counts = [0u32; 2];
        for i in 0..20_000u32 {
            counts[spec.arm_for(id, &i.to_le_bytes())] += 1;
        }
        assert!((5_600..6_400).contains(&counts[0]), "{counts:?}");
        let sampled = (0..10_000u128)
            .filter(|i| spec.sampled(id, uuid::Uuid::from_u128(*i)))
            .count();
        assert!((1_800..2_200).contains(&sampled), "{sampled}");
    }
}
