//! The `flo2` binary's library half: configuration, wiring of the planes, shutdown and admin
//! commands. It is the only code that knows both planes; tests start servers through it.

pub mod admin;
pub mod config;
pub mod keyring;
pub mod server;
pub mod serving;

use std::net::SocketAddr;

pub use config::Config;
pub use server::{start, Mode, RunningServer};

/// Why flo2 could not start (or an admin command could not run).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The master key is missing, malformed or does not match the database.
    #[error("{0}")]
    MasterKey(String),
    /// The data directory could not be prepared.
    #[error("{0}")]
    DataDir(String),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Store(#[from] flo2_store::StoreError),
    /// A vault operation failed.
    #[error("vault: {0}")]
    Vault(#[from] flo2_vault::VaultError),
    /// The upstream HTTP client could not be built.
    #[error("upstream client: {0}")]
    Upstream(#[from] flo2_gateway::UpstreamError),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}
