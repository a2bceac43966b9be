//! `GET /v1/models`: the models the caller's organization can reach, in the caller's shape.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::caller::Caller;
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;

/// Lists `provider/model` ids for every provider the organization holds a key for.
pub async fn list(
    State(state): State<GatewayState>,
    caller: Caller,
) -> Result<Response, GatewayError> {
    let config = state.orgs.get(caller.key.org).await.map_err(|err| {
        tracing::error!(error = %err, "loading organization configuration failed");
        GatewayError::new(
            caller.format,
            ErrorKind::Unavailable,
            "flo2 cannot load your configuration right now; retry shortly",
        )
    })?;
    let models: Vec<(String, &'static str, &'static str)> = config
        .providers()
        .into_iter()
        .flat_map(flo2_llm::catalog::models_for)
        .map(|m| {
            (
                format!("{}/{}", m.provider, m.id),
                m.provider.as_str(),
                m.display_name.as_str(),
            )
        })
        .collect();
    let body: Value = match caller.format {
        ApiFormat::OpenAi => json!({
            "object": "list",
            "data": models.iter().map(|(id, owner, _)| json!({
                "id": id, "object": "model", "created": 0, "owned_by": owner,
            })).collect::<Vec<_>>(),
        }),
        ApiFormat::Anthropic => json!({
            "data": models.iter().map(|(id, _, name)| json!({
                "type": "model", "id": id, "display_name": name, "created_at": "1970-01-01T00:00:00Z",
            })).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": models.first().map(|m| &m.0),
            "last_id": models.last().map(|m| &m.0),
        }),
    };
    Ok(Json(body).into_response())
}
