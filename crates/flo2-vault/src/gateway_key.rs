//! flo2 gateway keys: the secrets apps send to the data plane.
//!
//! Format: `flo2_` + 43 base62 characters of randomness (256 bits) + a 6-character base62
//! CRC-32 of those characters. The fixed prefix lets secret scanners find leaked keys, and the
//! checksum lets them (and flo2) reject typos and random strings without a database lookup.
//!
//! Keys are stored only as their SHA-256. A fast hash is right here: the input has 256 bits of
//! entropy, so there is nothing to brute-force, and the data plane hashes on every request.

use std::fmt;

use flo2_core::Secret;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The prefix every gateway key starts with.
pub(crate) const PREFIX: &str = "flo2_";
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Total length of a gateway key in characters.
pub(crate) const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

/// The SHA-256 of a gateway key: what the database stores and what lookups use.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The hash as lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate in logs and reveals nothing useful.
        write!(f, "KeyHash({}…)", &self.to_hex()[..12])
    }
}

/// A newly minted key: the secret (shown to the user once) and what gets stored.
#[derive(Debug)]
pub struct MintedKey {
    /// The full key. Return it in the creation response, then drop it.
    pub secret: Secret<String>,
    /// What the database stores.
    pub hash: KeyHash,
    /// A non-secret reminder for listings, such as `flo2_Ab3d…x9Zq`.
    pub hint: String,
}

/// The presented string is not a well-formed flo2 key (wrong prefix, length, alphabet or checksum).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed flo2 key")]
pub struct MalformedKey;

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Mints a fresh gateway key.
pub fn mint() -> MintedKey {
    let mut rng = rand::rngs::OsRng;
    let random: String = (0..RANDOM_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let key = format!("{PREFIX}{random}{}", checksum(&random));
    MintedKey {
        hash: hash(&key),
        hint: hint(&key),
        secret: Secret::new(key),
    }
}

/// Checks a presented key's shape and checksum, and returns its hash for lookup.
pub fn parse(presented: &str) -> Result<KeyHash, MalformedKey> {
    let body = presented.strip_prefix(PREFIX).ok_or(MalformedKey)?;
    if presented.len() != KEY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(MalformedKey);
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    if checksum(random) != check {
        return Err(MalformedKey);
    }
    Ok(hash(presented))
}

fn hash(key: &str) -> KeyHash {
    KeyHash(Sha256::digest(key.as_bytes()).into())
}

fn hint(key: &str) -> String {
    let head = &key[..PREFIX.len() + 4];
    let tail = &key[key.len() - 4..];
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_hash_consistently() {
        let k = mint();
        let s = k.secret.expose();
        assert!(s.starts_with("flo2_"));
        assert_eq!(s.len(), KEY_LEN);
        assert_eq!(parse(s), Ok(k.hash));
        assert!(k.hint.starts_with("flo2_") && k.hint.contains('…'));
        assert!(!format!("{k:?}").contains(s.as_str()));
    }

    #[test]
    fn keys_are_distinct() {
        let a = mint();
        let b = mint();
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn typos_and_junk_are_rejected_without_lookup() {
        let k = mint();
        let s = k.secret.expose().clone();
        let mut typo = s.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse(&String::from_utf8(typo).unwrap()), Err(MalformedKey));
        for junk in [
            "",
            "flo2_",
            "sk-abc",
            &s[..s.len() - 1],
            &format!("{s}x"),
            "flo2_ü",
        ] {
            assert_eq!(parse(junk), Err(MalformedKey), "{junk:?}");
        }
        // Multi-byte characters of the right byte length must not panic the slicing.
        let tricky = format!("flo2_{}", "é".repeat((RANDOM_LEN + CHECKSUM_LEN) / 2));
        let _ = parse(&tricky);
    }
}
