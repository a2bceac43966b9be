//! A resolved upstream target: the provider, its model id, the organization's key and price for
//! it. Built from an organization's configuration by [`crate::serve::resolve`] and routing; read
//! by every stage that calls or meters.

use std::sync::Arc;

use flo2_core::ProviderKind;

use crate::state::org_cache::CredentialEntry;

/// A resolved upstream target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Provider.
    pub provider: ProviderKind,
    /// The provider's model id.
    pub model: String,
    /// The key to use.
    pub credential: Arc<CredentialEntry>,
    /// Where to send it (no trailing slash).
    pub base_url: String,
    /// Its price for this call (override or list price); `None` when flo2 knows none.
    pub price: Option<flo2_core::ModelPrice>,
}
