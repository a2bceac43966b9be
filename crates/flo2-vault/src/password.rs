//! Password hashing with argon2id (the crate's defaults follow the OWASP recommendation).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use flo2_core::Secret;

use crate::VaultError;

/// Shortest password accepted (ASVS 2.1.1: at least 12 characters).
pub const MIN_LEN: usize = 12;
/// Longest password accepted (ASVS 2.1.2 asks for at least 128); bounds the hashing work an
/// attacker can request.
pub const MAX_LEN: usize = 256;

/// Hashes a password into a self-describing PHC string.
pub fn hash(password: &Secret<String>) -> Result<String, VaultError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| VaultError::PasswordHash)
}

/// True when `password` matches the stored PHC string. A malformed stored hash never matches.
pub fn verify(password: &Secret<String>, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A real hash of a random password, made once per process, to verify against when the user
/// does not exist, so a login for an unknown email costs the same time as one for a known email.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let random = crate::token::generate("");
        hash(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let pw = Secret::new("correct horse".to_string());
        let h1 = hash(&pw).unwrap();
        let h2 = hash(&pw).unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2);
        assert!(verify(&pw, &h1));
        assert!(!verify(&Secret::new("wrong horse".into()), &h1));
        assert!(!verify(&pw, "garbage"));
        assert!(!verify(&pw, decoy_hash()));
    }
}
