//! The console's operations, one module per resource: typed functions
//! `(&ConsoleState, &Principal, input) -> Result<output, ApiError>` that check the caller's role,
//! validate, write through the store and record the audit entry.
//!
//! `api/*` (JSON) and `web/*` (pages) are thin adapters over these: they turn a request into
//! the input and the result into an answer. This layer may call the store, the vault, the
//! validators and [`crate::audit`]; it never sees an HTTP request, and no adapter calls another
//! adapter. A refused input comes back as an [`ApiError`](crate::error::ApiError) naming its
//! field ([`ApiError::field`](crate::error::ApiError::field)), so each adapter shows it its own
//! way.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod audit_log;
pub(crate) mod members;
pub(crate) mod organizations;
pub(crate) mod prices;
pub(crate) mod provider_keys;
pub(crate) mod routes;
pub(crate) mod teams;
pub(crate) mod usage;
