//! Server-rendered console pages (askama templates from the repository's `templates/`).

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::ConsoleState;

const STYLESHEET: &str = include_str!("../../../static/flo2.css");
const SCRIPT: &str = include_str!("../../../static/flo2.js");

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    chrome: crate::web::Chrome,
}

pub(crate) fn routes(https: bool) -> Router<ConsoleState> {
    Router::new()
        .route("/", get(index))
        .route("/static/flo2.css", get(stylesheet))
        .route("/static/flo2.js", get(script))
        .layer(axum::middleware::map_response_with_state(
            https,
            crate::security_headers::layer,
        ))
}

async fn index() -> Response {
    let page = IndexPage {
        chrome: crate::web::Chrome::anonymous(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering the index page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
