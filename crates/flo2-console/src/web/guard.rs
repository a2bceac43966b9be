//! What protects the dashboard's forms and logins: CSRF tokens and login throttling.
//!
//! **CSRF.** Every form carries a token that a cross-site page cannot know. For a logged-in user
//! it is an HMAC of the session id under a key derived from the master key; before login (sign
//! up, log in) it is an HMAC of a random nonce kept in a `SameSite=Strict` cookie (double
//! submit). Tokens are compared in constant time. Form posts also pass the origin check of
//! `crate::web::origin`.
//!
//! **Throttling.** Logins are throttled per (account, client address) and per client address
//! (`crate::login_throttle`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::login_throttle::LoginThrottle;

/// CSRF keys and login counters.
pub struct Guard {
    csrf_key: [u8; 32],
    logins: LoginThrottle,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard { .. }")
    }
}

impl Guard {
    /// A guard whose CSRF tokens are keyed by `csrf_key`.
    pub fn new(csrf_key: [u8; 32]) -> Self {
        Self {
            csrf_key,
            logins: LoginThrottle::new(),
        }
    }

    /// The CSRF token for a logged-in session.
    pub fn session_token(&self, session: &str) -> String {
        hex(&hmac(
            &self.csrf_key,
            format!("session:{session}").as_bytes(),
        ))
    }

    /// The CSRF token for an anonymous form, bound to the nonce in its cookie.
    pub fn anonymous_token(&self, nonce: &str) -> String {
        hex(&hmac(
            &self.csrf_key,
            format!("anonymous:{nonce}").as_bytes(),
        ))
    }

    /// The login counters.
    pub(crate) fn logins(&self) -> &LoginThrottle {
        &self.logins
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// HMAC-SHA256 (RFC 2104) with the `hmac` crate.
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    // Any key length is valid for HMAC; `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key "Jefe"; ours are 32 bytes, zero-padded the same
        // way, so padding "Jefe" to 32 bytes gives the RFC's answer.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex(&hmac(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The hand-written HMAC this module used before the `hmac` crate, kept to prove that
    /// tokens issued before the switch still verify: same key, same message, same bytes.
    fn hand_rolled_hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        let mut padded = [0u8; 64];
        padded[..key.len()].copy_from_slice(key);
        let inner_key: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
        let outer_key: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&inner_key)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(&outer_key)
            .chain_update(inner)
            .finalize()
            .into()
    }

    #[test]
    fn hmac_crate_gives_the_old_bytes() {
        for (key, message) in [
            ([0u8; 32], &b""[..]),
            (
                [7u8; 32],
                &b"session:0190f3c2-7d4e-7a1b-9c3d-5e6f7a8b9c0d"[..],
            ),
            ([0xa5u8; 32], &b"anonymous:nonce-123"[..]),
            ([0xffu8; 32], &[0u8; 200][..]),
        ] {
            assert_eq!(hmac(&key, message), hand_rolled_hmac(&key, message));
        }
        // A fixed token, as issued before the switch.
        assert_eq!(
            Guard::new([7; 32]).session_token("s"),
            hex(&hand_rolled_hmac(&[7; 32], b"session:s"))
        );
    }

    #[test]
    fn tokens_differ_by_session_and_kind() {
        let g = Guard::new([7; 32]);
        assert_ne!(g.session_token("a"), g.session_token("b"));
        assert_ne!(g.session_token("a"), g.anonymous_token("a"));
        assert!(same(&g.session_token("a"), &g.session_token("a")));
        assert!(!same(&g.session_token("a"), "x"));
    }
}
