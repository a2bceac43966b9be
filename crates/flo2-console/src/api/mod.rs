//! The `/api/v1` routes and their OpenAPI document, built together by utoipa-axum so the
//! document cannot drift from the router.

pub mod accounts;
pub mod api_keys;
pub mod audit_log;
pub mod members;
pub mod organizations;
pub mod prices;
pub mod provider_keys;
pub mod routes;
pub mod teams;
pub mod usage;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ConsoleState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flo2 management API",
        description = "Accounts, organizations, members, teams, the provider-key vault, gateway keys, prices, routes, usage reports and the audit log. \
                       Authenticate with `Authorization: Bearer <token>` from /signup or /login. \
                       Errors are JSON `{code, message}` with a stable `code`."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every `/api/v1` route, with its documentation, mounted under `/api/v1`.
pub fn routes() -> OpenApiRouter<ConsoleState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(organizations::list, organizations::create))
        .routes(routes!(organizations::current, organizations::rename))
        .routes(routes!(organizations::switch))
        .routes(routes!(members::list))
        .routes(routes!(members::change_role, members::remove))
        .routes(routes!(members::list_invites, members::create_invite))
        .routes(routes!(members::revoke_invite))
        .routes(routes!(members::accept_invite))
        .routes(routes!(teams::list, teams::create))
        .routes(routes!(teams::get, teams::rename, teams::delete))
        .routes(routes!(provider_keys::list, provider_keys::create))
        .routes(routes!(
            provider_keys::get,
            provider_keys::update,
            provider_keys::delete
        ))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::get, api_keys::revoke))
        .routes(routes!(prices::list, prices::create))
        .routes(routes!(prices::delete))
        .routes(routes!(audit_log::list))
        .routes(routes!(routes::list))
        .routes(routes!(routes::get, routes::put, routes::delete))
        .routes(routes!(usage::get))
        .routes(routes!(usage::summary_csv))
        .routes(routes!(usage::export_csv));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}
