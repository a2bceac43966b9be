//! The operator's master key(s), which wrap every organization's data key.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::VaultError;

/// A 256-bit master key. It never prints.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    id: MasterKeyId,
}

/// A short, non-secret fingerprint of a master key, stored beside each wrapped data key so
/// flo2 knows which key to unwrap with and can refuse to start with the wrong one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MasterKeyId([u8; 8]);

impl MasterKey {
    /// Parses a key given as standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| VaultError::MalformedMasterKey)?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| VaultError::MalformedMasterKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"flo2/master-key-id/v1\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self {
            bytes,
            id: MasterKeyId(id),
        }
    }

    /// The key as standard base64, for writing the generated key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// This key's fingerprint.
    pub fn id(&self) -> MasterKeyId {
        self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, *****)", self.id)
    }
}

impl MasterKeyId {
    /// Parses the 16-hex-digit form stored in the database.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 16 {
            return None;
        }
        let mut out = [0u8; 8];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKeyId({self})")
    }
}

/// HKDF's salt for subkeys (RFC 5869): fixed, naming flo2 and the derivation's version.
const SUBKEY_SALT: &[u8] = b"flo2/subkey/v2";

/// A 256-bit subkey for `purpose`: HKDF-SHA256 with the master key as input keying material,
/// [`SUBKEY_SALT`] as salt and the purpose as info.
///
/// Version 2. Version 1 (before HKDF) was `SHA-256("flo2/subkey/v1\0" || purpose || 0 || key)`;
/// subkeys changed with the switch, so management tokens and CSRF tokens signed under version 1
/// stopped verifying: their holders log in (or reload a form) once.
fn subkey(key: &MasterKey, purpose: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    // Expand fails only for outputs longer than 255 hash lengths; 32 bytes is one.
    match Hkdf::<Sha256>::new(Some(SUBKEY_SALT), key.bytes()).expand(purpose.as_bytes(), &mut out) {
        Ok(()) => out,
        Err(_) => [0; 32],
    }
}

/// The primary master key, which wraps new data keys, plus previous keys that can still
/// unwrap old ones. Rotation adds a new primary, re-wraps every data key, then drops the old key.
#[derive(Clone, Debug)]
pub struct MasterKeyring {
    primary: MasterKey,
    previous: Vec<MasterKey>,
}

impl MasterKeyring {
    /// A keyring with one key.
    pub fn new(primary: MasterKey) -> Self {
        Self {
            primary,
            previous: Vec::new(),
        }
    }

    /// Adds keys that may still unwrap data keys during a rotation.
    pub fn with_previous(mut self, previous: impl IntoIterator<Item = MasterKey>) -> Self {
        self.previous
            .extend(previous.into_iter().filter(|k| k.id() != self.primary.id()));
        self
    }

    /// The key new data keys are wrapped with.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// The key with this fingerprint, if configured.
    pub fn get(&self, id: MasterKeyId) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.previous)
            .find(|k| k.id() == id)
    }

    /// A 256-bit key for another purpose (e.g. signing sessions), derived from the primary key
    /// so operators manage one secret. Rotating the master key therefore rotates these too.
    pub fn derive_subkey(&self, purpose: &str) -> [u8; 32] {
        subkey(&self.primary, purpose)
    }

    /// The same subkey derived from every configured key, primary first: what a verifier should
    /// accept while a rotation is under way.
    pub fn derive_subkeys(&self, purpose: &str) -> Vec<[u8; 32]> {
        std::iter::once(&self.primary)
            .chain(&self.previous)
            .map(|k| subkey(k, purpose))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_base64_and_have_stable_ids() {
        let k = MasterKey::generate();
        let again = MasterKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.id(), again.id());
        assert_eq!(MasterKeyId::parse(&k.id().to_string()), Some(k.id()));
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(MasterKey::from_base64("short").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 31])).is_err());
        assert!(MasterKey::from_base64("not base64 at all!!").is_err());
        assert_eq!(MasterKeyId::parse("zz"), None);
        assert_eq!(MasterKeyId::parse("zzzzzzzzzzzzzzzz"), None);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn subkeys_are_hkdf_sha256() {
        // Pinned: a change of these bytes logs every user out. Computed independently with
        // Python's hmac module: PRK = HMAC(salt, key), OKM = HMAC(PRK, purpose || 0x01).
        let ring = MasterKeyring::new(MasterKey::from_bytes([0x42; 32]));
        assert_eq!(
            hex(&ring.derive_subkey("console-session")),
            "442416837b96690e3a7f329f63e3a3209aeba96dcc2fea93de25c1e2269157b8"
        );
        assert_eq!(
            hex(&ring.derive_subkey("console-csrf")),
            "54d5bad47f2bbfad99cf155bd4f6d84f20bd5b3905f2b992a8bfc09933f2faae"
        );
        // Version 1's subkey for the same input, which the switch to HKDF retired.
        let v1: [u8; 32] = Sha256::new()
            .chain_update(b"flo2/subkey/v1\0")
            .chain_update(b"console-session")
            .chain_update([0u8])
            .chain_update([0x42; 32])
            .finalize()
            .into();
        assert_eq!(
            hex(&v1),
            "d7182c9488d75240d6de5a94775732de3cd142c4f0be224afd3ab4e257a7029b"
        );
        assert_ne!(ring.derive_subkey("console-session"), v1);
    }

    #[test]
    fn subkeys_differ_by_purpose_and_key() {
        let ring = MasterKeyring::new(MasterKey::generate());
        assert_ne!(ring.derive_subkey("a"), ring.derive_subkey("b"));
        let other = MasterKeyring::new(MasterKey::generate());
        assert_ne!(ring.derive_subkey("a"), other.derive_subkey("a"));
        let rotating = other.clone().with_previous([ring.primary().clone()]);
        assert_eq!(
            rotating.derive_subkeys("a"),
            [other.derive_subkey("a"), ring.derive_subkey("a")]
        );
    }
}
