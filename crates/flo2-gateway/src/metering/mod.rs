//! What calls cost and how long flo2 itself took: the per-attempt meter, the usage sink and its
//! writer (batched, spilled to disk while the database is away), gateway keys' last-used times,
//! and flo2's own-time histogram. May call [`crate::state`] (targets) only.

pub(crate) mod key_usage;
pub(crate) mod meter;
pub(crate) mod overhead;
pub(crate) mod usage_sink;
pub(crate) mod usage_spill;
