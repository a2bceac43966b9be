//! Random single-use tokens (invitation links): shown once, stored as SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flo2_core::Secret;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh token with `prefix` and 256 random bits, URL-safe.
pub fn generate(prefix: &str) -> Secret<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = generate("inv_");
        let b = generate("inv_");
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("inv_"));
        assert_eq!(hash(a.expose()), hash(a.expose()));
    }
}
