//! Talking to providers: the HTTP client and its deadlines, the request plan (translated or
//! passed through, numbers kept exact, steering fields dropped), one exchange (send, read,
//! classify an error answer) and the stream relay. May call [`crate::metering`] (a relay
//! meters its stream) and [`crate::state`] (targets); never a stage above it.

pub(crate) mod client;
pub(crate) mod deadline;
pub(crate) mod exact_json;
pub(crate) mod exchange;
pub(crate) mod passthrough_body;
pub(crate) mod plan;
pub(crate) mod relay;
pub(crate) mod steering_fields;
