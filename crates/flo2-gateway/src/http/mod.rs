//! The inbound edge: routes and handlers per inbound API, gateway-key authentication and
//! admission (as extractors, before the body is read), the caller's body, request ids.
//! Handlers only extract and hand over to [`crate::pipeline`]; nothing below imports them.

pub(crate) mod admission;
pub(crate) mod auth;
pub(crate) mod caller_body;
pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod request_id;
pub(crate) mod router;
