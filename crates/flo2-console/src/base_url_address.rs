//! The save-time half of the SSRF rule (`docs/ssrf.md`): a provider base URL whose host is, or
//! resolves to, an address that is not globally reachable is refused when it is saved, so the
//! tenant hears about it at once instead of on the first call. The gateway checks again on
//! every dial, on the addresses actually used, which is what defeats DNS rebinding.

use std::net::IpAddr;
use std::time::Duration;

use flo2_core::address::is_globally_reachable;

use crate::error::ApiError;

/// How long a base URL's name may take to resolve when it is saved.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuses `url` (already validated by [`crate::validate::base_url`]) when its host is not
/// globally reachable, unless the operator allows private upstreams. A name is resolved; it is
/// refused when any of its addresses is not reachable, and when it does not resolve in time
/// (it cannot be shown to be public). The message never says what the name resolved to.
pub async fn check(url: &str, allow_private: bool) -> Result<(), ApiError> {
    if allow_private {
        return Ok(());
    }
    // Parsed as the gateway parses it before dialling (IDNA, IPv4 shorthand such as `0x7f.1`).
    let parsed = url::Url::parse(url).map_err(|_| refused("is not a valid URL"))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
        Some(url::Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
        Some(url::Host::Domain(name)) => resolve(name, port).await?,
        None => return Err(refused("has no host")),
    };
    if addresses.iter().all(|ip| is_globally_reachable(*ip)) {
        Ok(())
    } else {
        Err(refused(
            "points to a private, local or reserved address, which this flo2 does not allow \
             (FLO2_ALLOW_PRIVATE_UPSTREAMS)",
        ))
    }
}

async fn resolve(name: &str, port: u16) -> Result<Vec<IpAddr>, ApiError> {
    let unresolved = || {
        refused(
            "has a host name that does not resolve, so it cannot be shown to be public \
             (FLO2_ALLOW_PRIVATE_UPSTREAMS allows it)",
        )
    };
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| unresolved())?
        .map_err(|_| unresolved())?;
    let addresses: Vec<IpAddr> = found.map(|a| a.ip()).collect();
    if addresses.is_empty() {
        return Err(unresolved());
    }
    Ok(addresses)
}

fn refused(why: &str) -> ApiError {
    ApiError::refused_field("base_url", format!("`base_url` {why}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn literals_and_local_names_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://0x7f.1/v1",
            "http://[::1]/v1",
            "http://[::ffff:169.254.169.254]/latest",
            "http://[64:ff9b::a00:1]/v1",
            "http://198.18.0.1/v1",
            "http://localhost:9/v1",
            "http://does-not-exist.invalid/v1",
        ] {
            let err = check(url, false).await.unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(err.code(), "invalid_field");
            assert!(err.message().starts_with("`base_url`"), "{url}");
            check(url, true).await.unwrap();
        }
        check("https://1.1.1.1/v1", false).await.unwrap();
        check("https://[2606:4700::1111]/v1", false).await.unwrap();
    }
}
