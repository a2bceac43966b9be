//! Management authentication: signed session tokens and the [`Principal`] extractor.
//!
//! A token is a short-lived HS256 JWT naming a session row. The signature lets flo2 reject junk
//! without touching the database; the session row makes tokens revocable (logout, password
//! change). The signing key is derived from the master key, so operators manage one secret.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use flo2_core::{OrgId, Role, Secret, SessionId, UserId};
use flo2_store::StoreError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ConsoleState;

/// Issues and verifies session tokens.
#[derive(Clone)]
pub struct SessionTokens {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
    validation: Validation,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
}

const ISSUER: &str = "flo2";

impl SessionTokens {
    /// Tokens signed with `keys[0]` and accepted under any of `keys`, valid for `ttl`.
    pub fn new(keys: &[[u8; 32]], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(keys.first().map_or(&[][..], |k| &k[..])),
            decoding: keys.iter().map(|k| DecodingKey::from_secret(k)).collect(),
            validation,
            ttl,
        }
    }

    /// How long tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs a token for a stored session.
    pub fn issue(
        &self,
        session: SessionId,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<Secret<String>, ApiError> {
        let claims = Claims {
            iss: ISSUER.into(),
            sub: user.to_string(),
            sid: session.to_string(),
            iat: Utc::now().timestamp(),
            exp: expires_at.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map(Secret::new)
            .map_err(|e| ApiError::internal(&e))
    }

    /// Checks signature, issuer and expiry; returns the session and user it names.
    fn verify(&self, token: &str) -> Option<(SessionId, UserId)> {
        let data = self
            .decoding
            .iter()
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &self.validation).ok())?;
        Some((data.claims.sid.parse().ok()?, data.claims.sub.parse().ok()?))
    }
}

/// The authenticated caller of a management request: a user, their session, and the
/// organization the session works in with the user's role there.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The session behind the token.
    pub session: SessionId,
    /// The user.
    pub user: UserId,
    org: Option<(OrgId, Role)>,
    /// The address the request came from ([`crate::client_address`]).
    pub client_address: Option<std::net::IpAddr>,
}

impl Principal {
    /// The current organization and role; 403 when the user belongs to none.
    pub fn org(&self) -> Result<(OrgId, Role), ApiError> {
        self.org.ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "no_organization",
                "this session has no current organization; create one or accept an invitation",
            )
        })
    }

    /// The current organization, if the caller's role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<OrgId, ApiError> {
        let (org, role) = self.org()?;
        if role.at_least(needed) {
            Ok(org)
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {needed} role or higher; you are {role}"
            )))
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<ConsoleState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let mut principal = Principal::from_token(state, token).await?;
        principal.client_address = Some(crate::client_address::ClientAddress::of(parts, state).0);
        Ok(principal)
    }
}

impl Principal {
    /// The principal a session token (from a bearer header or the dashboard's cookie) stands
    /// for; 401 unless its signature, expiry and session row all hold.
    pub async fn from_token(state: &ConsoleState, token: &str) -> Result<Self, ApiError> {
        let (sid, user) = state
            .tokens
            .verify(token)
            .ok_or_else(ApiError::unauthenticated)?;
        let session = match state.store.session(sid).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
            Err(e) => return Err(e.into()),
        };
        if session.user_id != user
            || session.revoked_at.is_some()
            || session.expires_at <= Utc::now()
        {
            return Err(ApiError::unauthenticated());
        }
        let org = match session.org_id {
            Some(org) => match state.store.role_of(org, user).await {
                Ok(role) => Some((org, role)),
                // Removed from the organization since the session started.
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        Ok(Principal {
            session: sid,
            user,
            org,
            client_address: None,
        })
    }
}
