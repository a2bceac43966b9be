//! The dashboard's "test" button for a provider key: the cheapest possible real call (one output
//! token from the provider's cheapest chat model in the catalog) with that key, reported back.
//! It is an upstream call the tenant pays for, so it is metered like any other (role `test`).

use std::time::Instant;

use flo2_core::{AttemptRole, CredentialId, OrgId};
use serde_json::json;

use crate::error::ApiFormat;
use crate::gateway::GatewayState;
use crate::serve::attempt::{self, Answer, Request, Success};
use crate::serve::needs::Needs;
use crate::serve::resolve::target;

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
        // The same attempt machinery as every gateway call: planned for the target, metered
        // (role `test`, no team or key), reported to the replica's health view.
        let req = Request {
            state: self,
            caller: None,
            org,
            format: ApiFormat::OpenAi,
            request_id: uuid::Uuid::now_v7(),
            requested: &label,
            route: None,
            body: crate::upstream::plan::CallerJson::parsed(&body, 128),
            beta: None,
            needs: Needs::of(&body),
            sent: std::sync::atomic::AtomicU32::new(0),
        };
        let started = Instant::now();
        let key = crate::state::health::TargetKey::new(org, t.provider, &t.model);
        let outcome = attempt::run(
            &req,
            t,
            &key,
            AttemptRole::Test,
            self.settings.upstream.request_timeout,
        )
        .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, status, detail, cost) = match outcome {
            Ok(Success {
                answer: answer @ Answer::Complete { cost, .. },
                ..
            }) => (
                true,
                200,
                format!("answered {:?}", answer.text()),
                cost.to_string(),
            ),
            Ok(Success {
                answer: Answer::Stream { .. },
                ..
            }) => (true, 200, "answered".to_owned(), "0".to_owned()),
            Err(f) => (
                false,
                f.error.status().as_u16(),
                f.error.message().to_owned(),
                "0".to_owned(),
            ),
        };
        Ok(KeyTestReport {
            ok,
            model: label,
            status,
            latency_ms,
            detail,
            cost_usd: cost,
        })
    }
}
