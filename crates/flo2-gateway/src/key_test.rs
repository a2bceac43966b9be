//! The dashboard's "test" button for a provider key: the cheapest possible real call (one output
//! token from the provider's cheapest chat model in the catalog) with that key, reported back.
//! It is an upstream call the tenant pays for, so it is metered like any other (role `test`).

use std::time::Instant;

use flo2_core::{CredentialId, OrgId};
use flo2_llm::providers;
use serde_json::json;

use crate::chat::{answer, read_limited, send, upstream_error};
use crate::error::ApiFormat;
use crate::meter::Meter;
use crate::plan::plan;
use crate::resolve::target;
use crate::GatewayState;

/// What a key test found.
#[derive(Clone, Debug)]
pub struct KeyTestReport {
    /// The provider answered 2xx.
    pub ok: bool,
    /// `provider/model` that was called.
    pub model: String,
    /// The upstream's HTTP status (502 when it could not be reached).
    pub status: u16,
    /// How long the call took.
    pub latency_ms: u64,
    /// The answer's text, or why it failed (never the key).
    pub detail: String,
    /// What it cost, exact USD.
    pub cost_usd: String,
}

/// Why no test call was made.
#[derive(Debug, thiserror::Error)]
pub enum KeyTestError {
    /// No such key in the organization.
    #[error("provider key not found")]
    NotFound,
    /// The provider has no chat model in the catalog (a custom OpenAI-compatible server).
    #[error(
        "flo2 knows no model of this provider to test with; call one through the gateway instead"
    )]
    NoModel,
    /// The configuration could not be loaded.
    #[error("flo2 cannot load the organization's configuration right now")]
    Unavailable,
}

impl GatewayState {
    /// Tests `credential` of `org` with one tiny call.
    pub async fn test_credential(
        &self,
        org: OrgId,
        credential: CredentialId,
    ) -> Result<KeyTestReport, KeyTestError> {
        // The key may have been added a moment ago: read the configuration fresh.
        self.orgs.invalidate(org);
        let config = self
            .orgs
            .get(org)
            .await
            .map_err(|_| KeyTestError::Unavailable)?;
        let cred = config
            .credentials
            .iter()
            .find(|c| c.id == credential)
            .ok_or(KeyTestError::NotFound)?;
        let model = flo2_llm::catalog::models_for(cred.provider)
            .filter(|m| m.price.output.0 > 0)
            .min_by_key(|m| (m.price.input.0 + m.price.output.0, m.id.clone()))
            .ok_or(KeyTestError::NoModel)?;
        let mut t = target(cred.provider, &model.id, cred);
        t.price = config.price_at(cred.provider, &model.id, chrono::Utc::now());
        let label = format!("{}/{}", t.provider, t.model);
        let body = json!({"model": label, "max_tokens": 1, "messages": [{"role": "user", "content": "Reply with OK."}]});
        let format = ApiFormat::OpenAi;
        let report = |ok, status, started: Instant, detail: String, cost: String| KeyTestReport {
            ok,
            model: label.clone(),
            status,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail,
            cost_usd: cost,
        };
        let started = Instant::now();
        let plan = match plan(format, &t, body) {
            Ok(p) => p,
            Err(e) => return Ok(report(false, 400, started, e.to_string(), "0".into())),
        };
        let mut meter =
            Meter::start_for_org(&self.usage, org, format, uuid::Uuid::now_v7(), &label, &t);
        meter.attempt(1, "test");
        // A failed call: metered with its status, reported with the upstream's (redacted) message.
        let failed = |meter: &mut Meter, err: &crate::error::GatewayError, kind: &str| {
            let status = err.status().as_u16();
            meter.finish(status, Some(kind));
            report(false, status, started, err.message().to_owned(), "0".into())
        };
        let url = providers::chat_url(t.provider, &t.base_url, &t.model, false);
        let response = match send(self, &t, &url, &plan, format).await {
            Ok(r) => r,
            Err(err) => return Ok(failed(&mut meter, &err, "upstream_unreachable")),
        };
        if !response.status().is_success() {
            let err = upstream_error(format, &t, response).await;
            return Ok(failed(&mut meter, &err, "upstream_error"));
        }
        meter.accepted();
        let parsed = match read_limited(response).await {
            Ok(bytes) => answer(format, &plan, &t, &bytes),
            Err(e) => Err(e),
        };
        match parsed {
            Ok((body, usage)) => {
                meter.usage(usage);
                let cost = meter.cost().to_string();
                meter.finish(200, None);
                let text = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        v["choices"][0]["message"]["content"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                Ok(report(
                    true,
                    200,
                    started,
                    format!("answered {text:?}"),
                    cost,
                ))
            }
            Err(message) => {
                meter.finish(502, Some("upstream_malformed"));
                Ok(report(false, 502, started, message, "0".into()))
            }
        }
    }
}
