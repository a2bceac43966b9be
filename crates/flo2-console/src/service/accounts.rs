//! Accounts: sign up, log in (throttled), log out, change password. The one sign-up and login
//! for the API and the dashboard.

use std::net::IpAddr;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use flo2_core::{OrgId, UserId};
use flo2_store::{NewOrganization, NewUser, StoreError};
use flo2_vault::password;

use super::organizations::new_organization;
use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::{validate, ConsoleState};

/// A sign-up as typed.
pub(crate) struct SignUp<'a> {
    pub email: &'a str,
    pub password: String,
    /// The name of the organization to create.
    pub organization: &'a str,
}

/// Runs argon2 off the async workers: it takes tens of milliseconds of CPU by design.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))
}

async fn start_session(
    state: &ConsoleState,
    user: UserId,
    org: Option<OrgId>,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let expires_at = Utc::now() + state.tokens.ttl();
    let session = state.store.create_session(user, org, expires_at).await?;
    let token = state.tokens.issue(session.id, user, expires_at)?;
    Ok((token.into_inner(), expires_at))
}

/// A new account, its organization and its first session.
pub(crate) struct SignedUp {
    pub user: UserId,
    pub email: String,
    pub organization: OrgId,
    pub organization_name: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates a user, their organization (they own it) and a session: the one sign-up for the API
/// and the dashboard. Errors name the field.
pub(crate) async fn sign_up(
    state: &ConsoleState,
    new: SignUp<'_>,
    address: Option<IpAddr>,
) -> Result<SignedUp, ApiError> {
    let email = validate::email(new.email)?;
    let org_name = validate::name("organization", new.organization)?;
    let password = new.password;
    let account = [email.clone(), org_name.clone()];
    let password_hash = blocking(move || {
        let secret = validate::password("password", password, &[&account[0], &account[1]])?;
        password::hash(&secret).map_err(ApiError::from)
    })
    .await??;
    let user = NewUser {
        id: UserId::new(),
        email,
        password_hash,
    };
    let org: NewOrganization = new_organization(state, org_name)?;
    match state.store.signup(&user, &org).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(
                ApiError::conflict("`email`: an account with that email already exists")
                    .at("email"),
            )
        }
        Err(e) => return Err(e.into()),
    }
    audit::record_as(
        state,
        org.id,
        Some(user.id),
        address.map(|a| a.to_string()),
        "account.signed_up",
        Target::new("user", user.id),
        serde_json::json!({"email": user.email, "organization": org.name}),
    )
    .await;
    let (token, expires_at) = start_session(state, user.id, Some(org.id)).await?;
    tracing::info!(user = %user.id, org = %org.id, "signed up");
    Ok(SignedUp {
        user: user.id,
        email: user.email,
        organization: org.id,
        organization_name: org.name,
        token,
        expires_at,
    })
}

/// Checks email and password (throttled per account and client address, and per client
/// address: [`crate::login_throttle`]) and starts a session: the one login for the API and the
/// dashboard.
pub(crate) async fn log_in(
    state: &ConsoleState,
    email: &str,
    password: String,
    client: IpAddr,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "email or password is wrong",
        )
    };
    let email = email.trim().to_lowercase();
    let throttle = state.guard.logins();
    if let Err(wait) = throttle.attempt(&email, client) {
        audit::login_throttled(state, &email, Some(client)).await;
        return Err(ApiError::too_many_attempts(wait));
    }
    if password.chars().count() > password::MAX_LEN {
        return Err(invalid());
    }
    let secret = flo2_core::Secret::new(password);
    let user = match state.store.user_by_email(&email).await {
        Ok(user) => Some(user),
        Err(StoreError::NotFound) => None,
        Err(e) => {
            // The password was never checked (the database is down, above all): the attempt
            // must not count, or a user retrying through an outage would lock themselves out.
            throttle.forgive(&email, client);
            return Err(e.into());
        }
    };
    // Verify against a decoy for unknown emails, so timing does not reveal which emails exist.
    let stored = user.as_ref().map_or_else(
        || password::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let matches = blocking(move || password::verify(&secret, &stored)).await;
    let matches = matches.inspect_err(|_| throttle.forgive(&email, client))?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(invalid());
    };
    throttle.succeeded(&email, client);
    let org = state
        .store
        .memberships(user.id)
        .await?
        .first()
        .map(|m| m.organization.id);
    start_session(state, user.id, org).await
}

/// Ends the caller's session; its token stops working at once.
pub(crate) async fn log_out(state: &ConsoleState, principal: &Principal) -> Result<(), ApiError> {
    state.store.revoke_session(principal.session).await?;
    Ok(())
}

/// Replaces the user's password after checking the current one; every session of the user ends.
pub(crate) async fn set_password(
    state: &ConsoleState,
    principal: &Principal,
    current: String,
    new: String,
) -> Result<(), ApiError> {
    let user = state.store.user(principal.user).await?;
    // The new password may not be the email or the name of any organization the user is in.
    let mut account = vec![user.email.clone()];
    account.extend(
        state
            .store
            .memberships(user.id)
            .await?
            .into_iter()
            .map(|m| m.organization.name),
    );
    let new = blocking(move || {
        let account: Vec<&str> = account.iter().map(String::as_str).collect();
        validate::password("new_password", new, &account)
    })
    .await??;
    let current = flo2_core::Secret::new(current);
    let stored = user.password_hash.clone();
    if !blocking(move || password::verify(&current, &stored)).await? {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "`current_password` is wrong",
        )
        .at("current_password"));
    }
    let hash = blocking(move || password::hash(&new)).await??;
    state.store.change_password(user.id, &hash).await?;
    Ok(())
}
