//! flo2's secrets, with no I/O:
//!
//! - [`DataKey`] (envelope): provider keys encrypted with AES-256-GCM under a per-organization data key,
//!   which is itself wrapped by the operator's master key ([`MasterKeyring`]).
//! - [`gateway_key`]: minting, checksumming and hashing of the keys apps use to call flo2.
//! - [`password`]: argon2id password hashing.
//! - [`password_rules`]: which passwords are accepted (length, guessability, account details).
//! - [`token`]: random single-use tokens (invitations) stored only as hashes.

mod envelope;
pub mod gateway_key;
mod master_key;
pub mod password;
pub mod password_rules;
pub mod token;

pub use envelope::{DataKey, WrappedDataKey};
pub use master_key::{MasterKey, MasterKeyId, MasterKeyring};

/// Why a vault operation failed. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A master key was not 32 bytes of standard base64.
    #[error(
        "master key must be 32 bytes encoded as standard base64 (e.g. `openssl rand -base64 32`)"
    )]
    MalformedMasterKey,
    /// A data key is wrapped by a master key that is not in the configured keyring.
    #[error("data key is wrapped by master key {0}, which is not configured")]
    UnknownMasterKey(MasterKeyId),
    /// Authentication of a ciphertext failed: wrong key, tampering, or a ciphertext moved to
    /// another row or organization.
    #[error("decryption failed: the ciphertext does not belong to this record or key")]
    Decrypt,
    /// A stored ciphertext has an unknown layout or version.
    #[error("stored ciphertext is malformed")]
    MalformedCiphertext,
    /// The OS random number generator or the cipher failed.
    #[error("encryption failed")]
    Encrypt,
    /// Password hashing failed.
    #[error("password hashing failed")]
    PasswordHash,
}
