//! The seam through which the dashboard's "test" button reaches the data plane: the console only
//! knows this trait; the binary plugs in the gateway's implementation (which holds the guarded
//! upstream client and the decrypted keys).

use std::future::Future;
use std::pin::Pin;

use flo2_core::{CredentialId, OrgId};

/// A boxed future, so the trait stays object-safe without an extra crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a provider-key test found.
#[derive(Clone, Debug)]
pub struct KeyTestOutcome {
    /// The provider answered 2xx.
    pub ok: bool,
    /// `provider/model` that was called.
    pub model: String,
    /// The upstream's HTTP status.
    pub status: u16,
    /// How long the call took.
    pub latency_ms: u64,
    /// The answer, or why it failed (never the key).
    pub detail: String,
    /// What it cost, exact USD.
    pub cost_usd: String,
}

/// Tests a provider key with the cheapest possible call.
pub trait KeyTester: Send + Sync {
    /// Tests `credential` of `org`; `Err` says why no call was made.
    fn test(
        &self,
        org: OrgId,
        credential: CredentialId,
    ) -> BoxFuture<'_, Result<KeyTestOutcome, String>>;
}
