//! flo2's domain vocabulary: typed ids, roles, provider kinds and secrets.
//!
//! This crate does no I/O, so every other crate can depend on it cheaply.

pub mod address;
pub mod attempt;
pub mod experiment;
pub mod ids;
pub mod model_id;
pub mod money;
pub mod pricing;
pub mod provider;
pub mod role;
pub mod route;
pub mod secret;
pub mod stats;

pub use attempt::{AttemptRole, FailureKind};
pub use ids::{CredentialId, GatewayKeyId, InviteId, OrgId, SessionId, TeamId, UserId};
pub use money::{MoneyError, PicoUsd, PricePerMtok};
pub use pricing::{ModelPrice, Tokens};
pub use provider::ProviderKind;
pub use role::Role;
pub use route::{RoutePolicy, RouteTarget, Strategy};
pub use secret::Secret;
