//! Sign up, log in, log out, who am I, change password ([`crate::service::accounts`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{Role, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::client_address::ClientAddress;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::service::accounts::{self, SignUp};
use crate::service::organizations::OrganizationView;
use crate::ConsoleState;

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

/// Create an account and its first organization.
#[utoipa::path(post, path = "/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signup(
    State(state): State<ConsoleState>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let new = SignUp {
        email: &req.email,
        password: req.password,
        organization: &req.organization,
    };
    let done = accounts::sign_up(&state, new, Some(address)).await?;
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

/// Exchange email and password for a management token.
#[utoipa::path(post, path = "/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn login(
    State(state): State<ConsoleState>,
    ClientAddress(client): ClientAddress,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let (token, expires_at) = accounts::log_in(&state, &req.email, req.password, client).await?;
    Ok(Json(TokenResponse { token, expires_at }))
}

/// End the current session; its token stops working at once.
#[utoipa::path(post, path = "/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    accounts::log_out(&state, &principal).await?;
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
    accounts::set_password(&state, &principal, req.current_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
