//! Envelope encryption: each organization has a random data key, stored wrapped (encrypted) by
//! the master key; provider keys are encrypted with the data key.
//!
//! Both layers use AES-256-GCM with a random 96-bit nonce. The associated data binds each
//! ciphertext to where it belongs: a wrapped data key to its organization, a credential to its
//! organization and credential id. A ciphertext copied into another row or tenant therefore fails
//! authentication instead of decrypting under the wrong owner.
//!
//! Stored layout of both: `version (1 byte) || nonce (12 bytes) || ciphertext+tag`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use flo2_core::{CredentialId, OrgId, Secret};
use rand::RngCore;

use crate::{MasterKeyId, MasterKeyring, VaultError};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// An organization's 256-bit data key, in memory only.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(*****)")
    }
}

/// A data key as stored: encrypted by the master key `key_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// Which master key wrapped it.
    pub key_id: MasterKeyId,
    /// `version || nonce || ciphertext+tag`.
    pub blob: Vec<u8>,
}

fn dek_aad(org: OrgId) -> Vec<u8> {
    let mut aad = b"flo2/dek/v1\0".to_vec();
    aad.extend_from_slice(org.as_uuid().as_bytes());
    aad
}

fn credential_aad(org: OrgId, credential: CredentialId) -> Vec<u8> {
    let mut aad = b"flo2/credential/v1\0".to_vec();
    aad.extend_from_slice(org.as_uuid().as_bytes());
    aad.extend_from_slice(credential.as_uuid().as_bytes());
    aad
}

fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open(key: &[u8; 32], blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let (version, rest) = blob.split_first().ok_or(VaultError::MalformedCiphertext)?;
    if *version != VERSION || rest.len() < NONCE_LEN + 16 {
        return Err(VaultError::MalformedCiphertext);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| VaultError::Decrypt)
}

impl DataKey {
    /// A fresh random data key for a new organization.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Encrypts a provider key for credential `credential` of organization `org`.
    pub fn seal_credential(
        &self,
        org: OrgId,
        credential: CredentialId,
        plaintext: &Secret<String>,
    ) -> Result<Vec<u8>, VaultError> {
        seal(
            &self.0,
            plaintext.expose().as_bytes(),
            &credential_aad(org, credential),
        )
    }

    /// Decrypts a provider key; fails if the ciphertext belongs to another row or organization.
    pub fn open_credential(
        &self,
        org: OrgId,
        credential: CredentialId,
        blob: &[u8],
    ) -> Result<Secret<String>, VaultError> {
        let plain = open(&self.0, blob, &credential_aad(org, credential))?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| VaultError::MalformedCiphertext)
    }
}

impl MasterKeyring {
    /// Wraps `dek` for `org` with the primary master key.
    pub fn wrap(&self, org: OrgId, dek: &DataKey) -> Result<WrappedDataKey, VaultError> {
        let primary = self.primary();
        Ok(WrappedDataKey {
            key_id: primary.id(),
            blob: seal(primary.bytes(), &dek.0, &dek_aad(org))?,
        })
    }

    /// Unwraps `org`'s data key with whichever configured master key wrapped it.
    pub fn unwrap(&self, org: OrgId, wrapped: &WrappedDataKey) -> Result<DataKey, VaultError> {
        let key = self
            .get(wrapped.key_id)
            .ok_or(VaultError::UnknownMasterKey(wrapped.key_id))?;
        let plain = open(key.bytes(), &wrapped.blob, &dek_aad(org))?;
        let bytes: [u8; 32] = plain
            .try_into()
            .map_err(|_| VaultError::MalformedCiphertext)?;
        Ok(DataKey(bytes))
    }

    /// Unwraps a data key as stored: the master key fingerprint in hex and the wrapped bytes.
    pub fn unwrap_stored(
        &self,
        org: OrgId,
        key_id_hex: &str,
        blob: Vec<u8>,
    ) -> Result<DataKey, VaultError> {
        let key_id = MasterKeyId::parse(key_id_hex).ok_or(VaultError::MalformedCiphertext)?;
        self.unwrap(org, &WrappedDataKey { key_id, blob })
    }

    /// Re-wraps a data key under the primary master key; `None` when it already is.
    /// The data key itself, and so every credential ciphertext, stays unchanged.
    pub fn rewrap(
        &self,
        org: OrgId,
        wrapped: &WrappedDataKey,
    ) -> Result<Option<WrappedDataKey>, VaultError> {
        if wrapped.key_id == self.primary().id() {
            return Ok(None);
        }
        let dek = self.unwrap(org, wrapped)?;
        self.wrap(org, &dek).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    #[test]
    fn credential_round_trip() {
        let (org, cred) = (OrgId::new(), CredentialId::new());
        let dek = DataKey::generate();
        let blob = dek.seal_credential(org, cred, &secret("sk-abc")).unwrap();
        assert!(!blob.windows(6).any(|w| w == b"sk-abc"));
        assert_eq!(
            dek.open_credential(org, cred, &blob).unwrap().expose(),
            "sk-abc"
        );
    }

    #[test]
    fn ciphertext_moved_to_another_row_or_org_fails() {
        let (org, cred) = (OrgId::new(), CredentialId::new());
        let dek = DataKey::generate();
        let blob = dek.seal_credential(org, cred, &secret("sk-abc")).unwrap();
        assert!(matches!(
            dek.open_credential(org, CredentialId::new(), &blob),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            dek.open_credential(OrgId::new(), cred, &blob),
            Err(VaultError::Decrypt)
        ));
        // Another organization's data key cannot read it either.
        assert!(DataKey::generate()
            .open_credential(org, cred, &blob)
            .is_err());
    }

    #[test]
    fn tampering_and_garbage_are_rejected_without_panicking() {
        let (org, cred) = (OrgId::new(), CredentialId::new());
        let dek = DataKey::generate();
        let mut blob = dek.seal_credential(org, cred, &secret("sk-abc")).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(dek.open_credential(org, cred, &blob).is_err());
        for garbage in [&[][..], &[1], &[2; 40], &[1; 20]] {
            assert!(dek.open_credential(org, cred, garbage).is_err());
        }
    }

    #[test]
    fn data_keys_are_bound_to_their_org_and_survive_rotation() {
        let old = MasterKeyring::new(MasterKey::generate());
        let org = OrgId::new();
        let dek = DataKey::generate();
        let cred = CredentialId::new();
        let blob = dek.seal_credential(org, cred, &secret("sk-xyz")).unwrap();
        let wrapped = old.wrap(org, &dek).unwrap();
        assert!(old.unwrap(OrgId::new(), &wrapped).is_err());

        let new_key = MasterKey::generate();
        let rotating = MasterKeyring::new(new_key.clone()).with_previous([old.primary().clone()]);
        let rewrapped = rotating.rewrap(org, &wrapped).unwrap().unwrap();
        assert_eq!(rewrapped.key_id, new_key.id());
        assert_eq!(rotating.rewrap(org, &rewrapped).unwrap(), None);

        // After rotation the old key can go; the credential ciphertext is untouched.
        let after = MasterKeyring::new(new_key);
        let dek2 = after.unwrap(org, &rewrapped).unwrap();
        assert_eq!(
            dek2.open_credential(org, cred, &blob).unwrap().expose(),
            "sk-xyz"
        );
        assert!(matches!(
            after.unwrap(org, &wrapped),
            Err(VaultError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn a_wrong_key_with_a_forged_id_fails_authentication() {
        let real = MasterKeyring::new(MasterKey::generate());
        let org = OrgId::new();
        let mut wrapped = real.wrap(org, &DataKey::generate()).unwrap();
        let imposter = MasterKeyring::new(MasterKey::generate());
        wrapped.key_id = imposter.primary().id();
        assert!(matches!(
            imposter.unwrap(org, &wrapped),
            Err(VaultError::Decrypt)
        ));
    }
}
