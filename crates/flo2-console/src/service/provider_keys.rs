//! The provider-key vault: tenants' upstream API keys, encrypted under the organization's data
//! key, write-only.

use flo2_core::{CredentialId, OrgId, ProviderKind, Role, Secret};
use flo2_store::{Credential, NewCredential};
use flo2_vault::DataKey;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::{base_url_address, validate, ConsoleState};

/// A provider key to store.
pub(crate) struct NewProviderKey<'a> {
    pub provider: ProviderKind,
    pub name: &'a str,
    /// The secret, as typed.
    pub api_key: String,
    pub base_url: Option<&'a str>,
}

/// Changes to a provider key; `None` leaves a value as it is.
pub(crate) struct KeyChanges {
    pub name: Option<String>,
    /// A new secret: a rotation.
    pub api_key: Option<String>,
    /// A URL to set, or `Some(None)` to return to the provider's default.
    pub base_url: Option<Option<String>>,
}

fn key_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("provider key", e)
}

/// The organization's data key, unwrapped with the configured master keyring.
async fn data_key(state: &ConsoleState, org: OrgId) -> Result<DataKey, ApiError> {
    let stored = state.store.data_key(org).await?;
    Ok(state
        .keyring
        .unwrap_stored(org, &stored.key_id, stored.wrapped)?)
}

/// A base URL to store: well-formed, required where the provider has no default, and not
/// reaching a private address (`docs/ssrf.md`).
async fn check_base_url(
    state: &ConsoleState,
    provider: ProviderKind,
    base_url: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let url = base_url.map(validate::base_url).transpose()?;
    match &url {
        None if provider.default_base_url().is_none() => {
            return Err(ApiError::invalid_field(
                "base_url",
                format!("`base_url` is required for provider `{provider}`"),
            ));
        }
        None => {}
        Some(url) => {
            base_url_address::check(url, state.settings.allow_private_upstreams).await?;
        }
    }
    Ok(url)
}

/// Provider keys of the caller's organization.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<Credential>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    Ok(state.store.credentials(org).await?)
}

/// One provider key (no secret).
pub(crate) async fn get(
    state: &ConsoleState,
    principal: &Principal,
    id: CredentialId,
) -> Result<Credential, ApiError> {
    let org = principal.require(Role::Viewer)?;
    state.store.credential(org, id).await.map_err(key_err)
}

/// Encrypts and stores a provider key (admin or owner) and records it.
pub(crate) async fn create(
    state: &ConsoleState,
    principal: &Principal,
    new: NewProviderKey<'_>,
) -> Result<Credential, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", new.name)?;
    let secret: Secret<String> = validate::api_key(new.api_key)?;
    let base_url = check_base_url(state, new.provider, new.base_url).await?;
    let id = CredentialId::new();
    let ciphertext = data_key(state, org)
        .await?
        .seal_credential(org, id, &secret)?;
    let created = state
        .store
        .create_credential(
            org,
            &NewCredential {
                id,
                provider: new.provider,
                name,
                base_url,
                ciphertext,
                hint: validate::hint(&secret),
            },
        )
        .await
        .map_err(key_err)?;
    audit::record(
        state,
        principal,
        org,
        "provider_key.created",
        Target::new("provider_key", created.id),
        serde_json::json!({"provider": created.provider, "name": created.name, "hint": created.hint, "base_url": created.base_url}),
    )
    .await;
    Ok(created)
}

/// Renames, re-points or rotates a provider key (admin or owner) and records it.
pub(crate) async fn update(
    state: &ConsoleState,
    principal: &Principal,
    id: CredentialId,
    changes: KeyChanges,
) -> Result<Credential, ApiError> {
    let org = principal.require(Role::Admin)?;
    let current = state.store.credential(org, id).await.map_err(key_err)?;
    let name = changes
        .name
        .as_deref()
        .map(|n| validate::name("name", n))
        .transpose()?;
    let changed: Vec<&str> = [
        ("name", changes.name.is_some()),
        ("base_url", changes.base_url.is_some()),
        ("api_key", changes.api_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, sent)| sent.then_some(field))
    .collect();
    let base_url = match changes.base_url {
        None => None,
        Some(url) => Some(check_base_url(state, current.provider, url.as_deref()).await?),
    };
    let secret = match changes.api_key {
        None => None,
        Some(raw) => {
            let secret = validate::api_key(raw)?;
            let ciphertext = data_key(state, org)
                .await?
                .seal_credential(org, id, &secret)?;
            Some((ciphertext, validate::hint(&secret)))
        }
    };
    let updated = state
        .store
        .update_credential(
            org,
            id,
            &flo2_store::CredentialUpdate {
                name,
                base_url,
                secret,
            },
        )
        .await
        .map_err(key_err)?;
    // A new secret is a rotation, whatever else changed with it.
    let action = if changed.contains(&"api_key") {
        "provider_key.rotated"
    } else {
        "provider_key.updated"
    };
    audit::record(
        state,
        principal,
        org,
        action,
        Target::new("provider_key", id),
        serde_json::json!({
            "changed": changed,
            "provider": updated.provider,
            "name": updated.name,
            "hint": updated.hint,
            "previous_hint": current.hint,
            "base_url": updated.base_url,
        }),
    )
    .await;
    Ok(updated)
}

/// Deletes a provider key (admin or owner) and records it.
pub(crate) async fn delete(
    state: &ConsoleState,
    principal: &Principal,
    id: CredentialId,
) -> Result<(), ApiError> {
    let org = principal.require(Role::Admin)?;
    let key = state.store.credential(org, id).await.map_err(key_err)?;
    state
        .store
        .delete_credential(org, id)
        .await
        .map_err(key_err)?;
    audit::record(
        state,
        principal,
        org,
        "provider_key.deleted",
        Target::new("provider_key", id),
        serde_json::json!({"provider": key.provider, "name": key.name, "hint": key.hint}),
    )
    .await;
    Ok(())
}
