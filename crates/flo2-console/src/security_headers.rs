//! The security headers every console answer carries (pages, `/api/v1` JSON, and the server's
//! plain 404 and 405 answers): a CSP without inline script, no framing, no referrer outside, no
//! MIME sniffing, no caching unless the answer says otherwise (answers may show a secret once),
//! and, under an https public URL, HSTS.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

/// The content security policy: everything from flo2 itself, scripts only from files.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// HSTS under an https public URL: a year, subdomains included (ASVS 14.4.5).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// Sets the security headers on `headers`; `https` adds HSTS. A `Cache-Control` already set
/// (static files) is kept.
pub fn apply(headers: &mut HeaderMap, https: bool) {
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            STRICT_TRANSPORT_SECURITY,
        );
    }
}

/// Middleware (`map_response_with_state`, the state says whether the public URL is https).
pub async fn layer(State(https): State<bool>, mut response: Response) -> Response {
    apply(response.headers_mut(), https);
    response
}
