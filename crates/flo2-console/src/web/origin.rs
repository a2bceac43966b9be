//! Cross-site form posts are refused before any handler runs, even with a valid CSRF token
//! (ASVS 4.2.2, 13.2.3; defence in depth behind the token and `SameSite` cookies).
//!
//! A state-changing request (anything but GET, HEAD and OPTIONS) is refused with 403 when
//! - `Sec-Fetch-Site` says anything but `same-origin` or `none` (a browser tells the truth here:
//!   `cross-site` and `same-site`, a sibling subdomain, are other origins), or
//! - `Origin` is present and is neither the public URL's origin nor the request's own `Host`
//!   (`Origin: null`, sent from sandboxed frames and after cross-origin redirects, included).
//!
//! A request with neither header passes: old browsers and non-browser clients send neither,
//! and the CSRF token still has to hold.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origin (`scheme://host[:port]`, lowercase, default port left out) of a URL.
pub fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?.as_str().to_ascii_lowercase();
    Some(format!(
        "{scheme}://{}",
        without_default_port(&scheme, &authority)
    ))
}

fn without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// Whether a state-changing request with these headers comes from another site. `public_origin`
/// is the console's public origin ([`origin_of`] of its public URL); `host` the request's own.
pub fn cross_site(headers: &HeaderMap, host: Option<&str>, public_origin: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
        return true; // `null` or junk
    };
    if public_origin == Some(origin.as_str()) {
        return false;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return true;
    };
    let Some(host) = host.map(|h| h.trim().to_ascii_lowercase()) else {
        return true;
    };
    authority != without_default_port(scheme, &host)
}

/// Middleware: refuses cross-site state-changing requests with 403.
pub async fn refuse_cross_site(
    State(public_origin): State<Option<String>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    if cross_site(request.headers(), host.as_deref(), public_origin.as_deref()) {
        tracing::warn!(path = %request.uri().path(), "refused a cross-site form post");
        return (
            StatusCode::FORBIDDEN,
            "This form was sent from another site; flo2 only accepts its own forms.",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const PUBLIC: Option<&str> = Some("https://console.example");

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("HTTPS://Console.Example:443/app").as_deref(),
            Some("https://console.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
    }

    #[test]
    fn same_origin_posts_pass() {
        let host = Some("127.0.0.1:8080");
        assert!(!cross_site(&headers(&[]), host, PUBLIC));
        assert!(!cross_site(
            &headers(&[("origin", "https://console.example")]),
            host,
            PUBLIC
        ));
        assert!(!cross_site(
            &headers(&[("origin", "http://127.0.0.1:8080")]),
            host,
            PUBLIC
        ));
        assert!(!cross_site(
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            host,
            PUBLIC
        ));
        assert!(!cross_site(
            &headers(&[("sec-fetch-site", "none")]),
            host,
            PUBLIC
        ));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let host = Some("127.0.0.1:8080");
        for h in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8081")]),
            // A matching Origin does not outvote the browser's own verdict.
            headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ]),
        ] {
            assert!(cross_site(&h, host, PUBLIC), "{h:?}");
        }
    }
}
