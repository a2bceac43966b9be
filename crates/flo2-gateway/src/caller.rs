//! Who is calling: the authenticated gateway key behind a `/v1` request ([`crate::http::auth`]
//! makes one) and the API it speaks. Every stage below the edge reads it; it depends on nothing
//! but the key cache's entry.

use std::sync::Arc;

use crate::error::ApiFormat;
use crate::state::key_cache::KeyEntry;

/// An authenticated data-plane caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key and the tenant it belongs to.
    pub key: Arc<KeyEntry>,
    /// The API family the caller speaks.
    pub format: ApiFormat,
}
