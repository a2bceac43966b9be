//! Sign up, log in, log out, who am I, change password.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role, UserId};
use flo2_store::{NewOrganization, NewUser, StoreError};
use flo2_vault::password;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::organizations::{new_organization, OrganizationView};
use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::client_address::ClientAddress;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::{validate, ConsoleState};

/// Sign-up request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Login email; must not be registered yet.
    email: String,
    /// 12 to 256 characters, any Unicode; not a common or easily guessed password, not the
    /// email or the organization's name (422 naming `password` otherwise).
    password: String,
    /// Name of the organization to create; the user becomes its owner.
    organization: String,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
}

/// Answer to sign-up.
#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    user: UserView,
    organization: OrganizationView,
    /// Management token for `Authorization: Bearer`.
    token: String,
    /// When the token expires.
    expires_at: DateTime<Utc>,
}

/// Log-in request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A management token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Management token for `Authorization: Bearer`.
    token: String,
    /// When it expires.
    expires_at: DateTime<Utc>,
}

/// The caller, their current organization and every organization they belong to.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    user: UserView,
    /// The organization this session works in, if any.
    organization: Option<OrganizationView>,
    organizations: Vec<OrganizationView>,
}

/// Password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
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

/// Create an account and its first organization.
#[utoipa::path(post, path = "/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signup(
    State(state): State<ConsoleState>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let done = sign_up(
        &state,
        &req.email,
        req.password,
        &req.organization,
        Some(address),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user: UserView {
                id: done.user,
                email: done.email,
            },
            organization: OrganizationView {
                id: done.organization,
                name: done.organization_name,
                role: Role::Owner,
                created_at: Utc::now(),
            },
            token: done.token,
            expires_at: done.expires_at,
        }),
    ))
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
    email: &str,
    password: String,
    organization: &str,
    address: Option<std::net::IpAddr>,
) -> Result<SignedUp, ApiError> {
    let email = validate::email(email)?;
    let org_name = validate::name("organization", organization)?;
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
            return Err(ApiError::conflict(
                "`email`: an account with that email already exists",
            ))
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

/// Exchange email and password for a management token.
#[utoipa::path(post, path = "/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn login(
    State(state): State<ConsoleState>,
    ClientAddress(client): ClientAddress,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let (token, expires_at) = log_in(&state, &req.email, req.password, client).await?;
    Ok(Json(TokenResponse { token, expires_at }))
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

/// End the current session; its token stops working at once.
#[utoipa::path(post, path = "/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_session(principal.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller and their organizations.
#[utoipa::path(get, path = "/me", tag = "accounts",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn me(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<MeResponse>, ApiError> {
    let user = state.store.user(principal.user).await?;
    let organizations: Vec<OrganizationView> = state
        .store
        .memberships(principal.user)
        .await?
        .into_iter()
        .map(OrganizationView::from)
        .collect();
    let current = principal.org().ok().map(|(id, _)| id);
    let organization = organizations
        .iter()
        .find(|o| Some(o.id) == current)
        .cloned();
    Ok(Json(MeResponse {
        user: UserView {
            id: user.id,
            email: user.email,
        },
        organization,
        organizations,
    }))
}

/// Change the password; every session of the user, this one included, ends.
#[utoipa::path(post, path = "/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    set_password(&state, &principal, req.current_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
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
        ));
    }
    let hash = blocking(move || password::hash(&new)).await??;
    state.store.change_password(user.id, &hash).await?;
    Ok(())
}
