//! Which targets may serve a request, and in which order they are tried.
//!
//! A route target qualifies when the organization holds a key for its provider (the pinned keys,
//! if the target names some) and it meets the request's needs and the
//! route's bar: context window ≥ the prompt plus the caller's output limit, tools, images and
//! JSON mode when the request uses them, and the route's price ceilings. A target flo2 knows
//! nothing about (a custom model with no stated capabilities) is not skipped for lack of facts.
//!
//! Order by strategy: `priority` and `race` as listed; `weighted` a random permutation drawn by
//! weight; `cheapest` by expected cost (the organization's prices × estimated prompt tokens and
//! the expected output), unpriced targets last; `fastest` by decaying average latency, targets
//! without history first so they are measured, and with `explore_percent` chance a random other
//! target goes first so a recovered target is noticed. Ties keep the listed order.
//!
//! Health is not a qualification: a target behind an open breaker still qualifies (so a route
//! whose targets are all down answers 503, not 400), and [`crate::serve::dispatch`] skips it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use flo2_core::{ModelPrice, OrgId, PicoUsd, ProviderKind, RoutePolicy, Strategy, Tokens};

use crate::serve::needs::Needs;
use crate::serve::resolve;
use crate::state::health::{Health, TargetKey};
use crate::state::org_cache::{CredentialEntry, OrgConfig};
use crate::state::target::Target;

/// Output tokens `cheapest` assumes when neither the request nor the route says.
pub const DEFAULT_EXPECTED_OUTPUT: u64 = 500;
/// `fastest` exploration when the route does not say (percent).
pub const DEFAULT_EXPLORE_PERCENT: u8 = 5;

/// A target that may serve, with its key pool.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Provider.
    pub provider: ProviderKind,
    /// The provider's model id.
    pub model: String,
    /// The organization's `provider/model`, as the health view knows it.
    pub key: TargetKey,
    /// The keys it may use, balanced.
    pub pool: Vec<Arc<CredentialEntry>>,
    /// Its price now.
    pub price: Option<ModelPrice>,
    /// Its breaker was open when the request was ordered (so it was moved behind the others,
    /// and `x-flo2-attempt-errors` names it as skipped).
    pub breaker_open: bool,
}

impl Candidate {
    /// The concrete target for one attempt with `credential`.
    pub fn target(&self, credential: &Arc<CredentialEntry>) -> Target {
        let mut t = resolve::target(self.provider, &self.model, credential);
        t.price = self.price.clone();
        t
    }

    /// `provider/model`, for headers and logs.
    pub fn label(&self) -> &str {
        self.key.label()
    }

    /// A candidate for `org`'s directly addressed model (`provider/model` or a bare name): every
    /// key of its provider forms the pool.
    pub fn direct(org: OrgId, config: &OrgConfig, target: &Target) -> Self {
        Candidate {
            provider: target.provider,
            model: target.model.clone(),
            key: TargetKey::new(org, target.provider, &target.model),
            pool: config
                .credentials
                .iter()
                .filter(|c| c.provider == target.provider)
                .cloned()
                .collect(),
            price: target.price.clone(),
            breaker_open: false,
        }
    }
}

/// No target of a route can serve this request; each reason names a target and why.
#[derive(Debug, thiserror::Error)]
#[error("no target of route {route:?} can serve this request: {}", reasons.join("; "))]
pub struct NoQualifyingTarget {
    /// The route.
    pub route: String,
    /// One reason per target.
    pub reasons: Vec<String>,
}

/// The qualifying targets of `org`'s route `policy` for a request with `needs`, in the order to
/// try them.
pub fn select(
    org: OrgId,
    route: &str,
    policy: &RoutePolicy,
    config: &OrgConfig,
    needs: &Needs,
    health: &Health,
    now: DateTime<Utc>,
) -> Result<Vec<Candidate>, NoQualifyingTarget> {
    let (max_input, max_output) = policy.max_prices();
    let mut reasons = Vec::new();
    let mut qualified: Vec<(Candidate, u32)> = Vec::new();
    for t in &policy.targets {
        let label = t.label();
        let pool: Vec<Arc<CredentialEntry>> = config
            .credentials
            .iter()
            .filter(|c| {
                c.provider == t.provider
                    && (t.credentials.is_empty() || t.credentials.contains(&c.id))
            })
            .cloned()
            .collect();
        // Routes are checked when saved; one stored before that check is not sent anywhere.
        if let Err(e) = flo2_core::model_id::check(t.provider, &t.model) {
            reasons.push(format!("{label}: {e}"));
            continue;
        }
        if pool.is_empty() {
            reasons.push(format!("{label}: no {} key", t.provider));
            continue;
        }
        let caps = config.capabilities(t.provider, &t.model, now);
        let price = config.price_at(t.provider, &t.model, now);
        // Both counts come from the caller: a `max_tokens` near 2^64 must not wrap past the check.
        let needed = needs
            .input_tokens
            .saturating_add(needs.max_output_tokens.unwrap_or(0));
        let why_not = if caps.context_window.is_some_and(|w| w < needed) {
            Some(format!(
                "context window {} < about {needed} tokens needed",
                caps.context_window.unwrap_or_default()
            ))
        } else if needs.tools && caps.tools == Some(false) {
            Some("no tool support".to_owned())
        } else if needs.images && caps.vision == Some(false) {
            Some("no image input".to_owned())
        } else if needs.json && caps.json == Some(false) {
            Some("no JSON mode".to_owned())
        } else if let (Some(max), Some(p)) = (max_input, &price) {
            (p.input > max).then(|| "input price above the route's maximum".to_owned())
        } else {
            None
        }
        .or_else(|| match (max_output, &price) {
            (Some(max), Some(p)) if p.output > max => {
                Some("output price above the route's maximum".to_owned())
            }
            (Some(_) | None, None) if max_input.is_some() || max_output.is_some() => {
                Some("no price known, and the route has a price ceiling".to_owned())
            }
            _ => None,
        });
        if let Some(why) = why_not {
            reasons.push(format!("{label}: {why}"));
            continue;
        }
        qualified.push((
            Candidate {
                provider: t.provider,
                model: t.model.clone(),
                key: TargetKey::new(org, t.provider, &t.model),
                pool,
                price,
                breaker_open: false,
            },
            t.weight.unwrap_or(1),
        ));
    }
    if qualified.is_empty() {
        return Err(NoQualifyingTarget {
            route: route.to_owned(),
            reasons,
        });
    }
    Ok(order(policy, qualified, needs, health))
}

fn order(
    policy: &RoutePolicy,
    mut targets: Vec<(Candidate, u32)>,
    needs: &Needs,
    health: &Health,
) -> Vec<Candidate> {
    match policy.strategy {
        Strategy::Priority | Strategy::Race => {}
        Strategy::Weighted => {
            // Draw without replacement, each draw by weight.
            let mut drawn = Vec::with_capacity(targets.len());
            while !targets.is_empty() {
                let total: u64 = targets.iter().map(|(_, w)| u64::from(*w)).sum();
                let mut pick = fastrand::u64(0..total.max(1));
                let i = targets
                    .iter()
                    .position(|(_, w)| {
                        if pick < u64::from(*w) {
                            true
                        } else {
                            pick -= u64::from(*w);
                            false
                        }
                    })
                    .unwrap_or(0);
                drawn.push(targets.remove(i));
            }
            targets = drawn;
        }
        Strategy::Cheapest => {
            let output = needs
                .max_output_tokens
                .or(policy.expected_output_tokens.map(u64::from))
                .unwrap_or(DEFAULT_EXPECTED_OUTPUT);
            let tokens = Tokens {
                input: needs.input_tokens,
                output,
                ..Tokens::default()
            };
            // Stable: equal costs keep the listed order; unpriced last.
            targets.sort_by_key(|(c, _)| {
                c.price
                    .as_ref()
                    .map_or((1, PicoUsd::ZERO), |p| (0, p.cost(&tokens)))
            });
        }
        Strategy::Fastest => {
            let latency = |c: &Candidate| health.average_latency(&c.key);
            // No history sorts first (it must be measured), then lowest average.
            targets.sort_by(|(a, _), (b, _)| match (latency(a), latency(b)) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.total_cmp(&y),
            });
            let explore = policy.explore_percent.unwrap_or(DEFAULT_EXPLORE_PERCENT);
            if targets.len() > 1 && fastrand::u8(0..100) < explore {
                let i = fastrand::usize(1..targets.len());
                let explored = targets.remove(i);
                targets.insert(0, explored);
            }
        }
    }
    targets.into_iter().map(|(c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::health::{HealthSettings, Outcome};
    use flo2_core::{CredentialId, Secret};
    use serde_json::json;

    const ORG: OrgId = OrgId::from_uuid(uuid::Uuid::nil());

    fn config() -> OrgConfig {
        let key = |provider| {
            Arc::new(CredentialEntry {
                id: CredentialId::new(),
                provider,
                name: "k".into(),
                base_url: None,
                secret: Secret::new("k".into()),
            })
        };
        OrgConfig {
            credentials: vec![
                key(ProviderKind::OpenAi),
                key(ProviderKind::Anthropic),
                key(ProviderKind::Groq),
            ],
            ..OrgConfig::default()
        }
    }

    fn policy(strategy: &str) -> RoutePolicy {
        serde_json::from_value(json!({"strategy": strategy, "targets": [
            {"provider": "openai", "model": "gpt-4o"},
            {"provider": "anthropic", "model": "claude-haiku-4-5"},
            {"provider": "openai", "model": "gpt-4o-mini"},
        ]}))
        .unwrap()
    }

    fn labels(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(Candidate::label).collect()
    }

    #[test]
    fn a_max_tokens_near_the_type_limit_cannot_wrap_past_the_context_check() {
        let h = Health::new(HealthSettings::default());
        let needs = Needs {
            input_tokens: 1_000,
            max_output_tokens: Some(u64::MAX - 10),
            ..Needs::default()
        };
        let err = select(
            ORG,
            "r",
            &policy("priority"),
            &config(),
            &needs,
            &h,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(err.reasons.len(), 3, "{err}");
        assert!(err.to_string().contains("context window"), "{err}");
    }

    #[test]
    fn cheapest_orders_by_expected_cost() {
        let h = Health::new(HealthSettings::default());
        let got = select(
            ORG,
            "r",
            &policy("cheapest"),
            &config(),
            &Needs {
                input_tokens: 1000,
                ..Needs::default()
            },
            &h,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            labels(&got),
            [
                "openai/gpt-4o-mini",
                "anthropic/claude-haiku-4-5",
                "openai/gpt-4o"
            ]
        );
    }

    #[test]
    fn targets_that_cannot_serve_are_skipped_with_reasons() {
        let h = Health::new(HealthSettings::default());
        let mut p = policy("priority");
        p.targets.push(
            serde_json::from_value(json!({"provider": "mistral", "model": "mistral-small-latest"}))
                .unwrap(),
        );
        let needs = Needs {
            input_tokens: 150_000,
            ..Needs::default()
        };
        let got = select(ORG, "r", &p, &config(), &needs, &h, Utc::now()).unwrap();
        // gpt-4o and gpt-4o-mini hold 128k tokens; Claude 200k; no Mistral key.
        assert_eq!(labels(&got), ["anthropic/claude-haiku-4-5"]);
        let err = select(
            ORG,
            "r",
            &p,
            &config(),
            &Needs {
                input_tokens: 5_000_000,
                ..Needs::default()
            },
            &h,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(err.reasons.len(), 4, "{err}");
        assert!(
            err.to_string()
                .contains("mistral/mistral-small-latest: no mistral key"),
            "{err}"
        );
    }

    #[test]
    fn fastest_measures_unknown_targets_then_prefers_the_quickest() {
        let h = Health::new(HealthSettings::default());
        let mut p = policy("fastest");
        p.explore_percent = Some(0);
        let c = CredentialId::new();
        h.record(
            &TargetKey::new(ORG, ProviderKind::OpenAi, "gpt-4o"),
            c,
            Outcome::Success(std::time::Duration::from_millis(300)),
        );
        h.record(
            &TargetKey::new(ORG, ProviderKind::Anthropic, "claude-haiku-4-5"),
            c,
            Outcome::Success(std::time::Duration::from_millis(100)),
        );
        let got = select(ORG, "r", &p, &config(), &Needs::default(), &h, Utc::now()).unwrap();
        assert_eq!(
            labels(&got),
            [
                "openai/gpt-4o-mini",
                "anthropic/claude-haiku-4-5",
                "openai/gpt-4o"
            ]
        );
    }

    #[test]
    fn weighted_follows_weights() {
        let h = Health::new(HealthSettings::default());
        let mut p = policy("weighted");
        p.targets[0].weight = Some(9);
        let firsts = (0..1000)
            .filter(|_| {
                select(ORG, "r", &p, &config(), &Needs::default(), &h, Utc::now()).unwrap()[0]
                    .label()
                    == "openai/gpt-4o"
            })
            .count();
        assert!((700..900).contains(&firsts), "{firsts}");
    }
}
