//! What the pipeline starts from ([`Inbound`]) and the first things it does with it: read the
//! JSON body, load the organization's configuration from memory, and turn a failed resolution
//! into the caller's error.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use serde_json::Value;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;
use crate::serve::resolve::ResolveError;
use crate::state::org_cache::OrgConfig;

/// A request as the edge hands it to the pipeline: who calls, in which API, its id, and its
/// body unread.
pub(crate) struct Inbound {
    /// The caller, speaking `format`.
    pub caller: Caller,
    /// The request id (`x-flo2-request-id`).
    pub id: Uuid,
    /// When the router got the request ([`crate::metering::overhead`] measures from here).
    pub arrived: Instant,
    /// `anthropic-beta`, forwarded to Anthropic only.
    pub beta: Option<String>,
    /// The body as it arrived.
    pub body: Bytes,
}

impl Inbound {
    /// The request of `caller` in `format`, with the edge's id and arrival time.
    pub(crate) fn new(
        caller: Caller,
        format: ApiFormat,
        id: crate::http::request_id::RequestId,
        beta: Option<String>,
        body: Bytes,
    ) -> Self {
        Self {
            caller: Caller { format, ..caller },
            id: id.id,
            arrived: id.arrived,
            beta,
            body,
        }
    }
}

pub(crate) fn parse_body(format: ApiFormat, body: &[u8]) -> Result<Value, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

pub(crate) async fn org_config(
    state: &GatewayState,
    caller: &Caller,
) -> Result<Arc<OrgConfig>, GatewayError> {
    state.orgs.get(caller.key.org).await.map_err(|err| {
        tracing::error!(error = %err, "loading organization configuration failed");
        GatewayError::new(
            caller.format,
            ErrorKind::Unavailable,
            "flo2 cannot load your configuration right now; retry shortly",
        )
    })
}

pub(crate) fn resolve_error(format: ApiFormat, e: &ResolveError) -> GatewayError {
    let kind = match e {
        ResolveError::Missing | ResolveError::BadModelId(_) => ErrorKind::InvalidRequest,
        ResolveError::NoKey(_) | ResolveError::Unknown(_) => ErrorKind::NotFound,
    };
    GatewayError::new(format, kind, e.to_string())
}
