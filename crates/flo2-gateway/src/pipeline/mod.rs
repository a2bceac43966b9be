//! What happens to an admitted request, stage by stage, in the order the stages run (in the
//! manner of pingora's proxy phases):
//!
//! 1. **admit**: authenticate the key and bound requests in flight, before the body is read
//!    ([`crate::http::admission`], an extractor at the edge).
//! 2. **read**: the JSON body, the model asked for, what the request needs ([`request`]).
//! 3. **select**: the organization's configuration from memory; a route's qualifying targets
//!    in its strategy's order with its fallback and race settings, or the one target of a
//!    directly addressed model ([`chat`]'s `select`).
//! 4. *(new stages: cache lookup, experiment assignment, budgets and rate limits. Each runs
//!    here, after select and before dispatch, as one function over what select decided that
//!    either lets the request go on or answers it.)*
//! 5. **dispatch**: attempts with fallback and races, each metered ([`crate::serve`]).
//! 6. **respond**: the answer's head and body in the caller's format ([`respond`]).
//!
//! May call [`crate::serve`], [`crate::upstream`] (body writing), [`crate::metering`] and
//! [`crate::state`]; never [`crate::http`] beyond the request id type it is handed.

pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod request;
pub(crate) mod respond;
