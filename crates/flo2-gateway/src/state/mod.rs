//! What this replica knows, in memory: gateway keys and organization configurations (kept
//! current by the change watcher), resolved targets, upstream health with its breakers and
//! budgets, and the admission counts. Calls nothing else in the crate.

pub(crate) mod admission;
pub(crate) mod budget;
pub(crate) mod change_watcher;
pub(crate) mod fresh_cache;
pub(crate) mod health;
pub(crate) mod key_cache;
pub(crate) mod org_cache;
pub(crate) mod target;
