//! The HTTP client for upstream providers: pooled keep-alive connections (HTTP/2 where the
//! server offers it over TLS), no redirects, and no dialling of private addresses unless the
//! operator allows it.
//!
//! The address check runs in the DNS resolver, on the addresses the connection will actually
//! use, so a name that resolves to a public address at check time and a private one at connect
//! time (DNS rebinding) is refused too. IP-literal URLs skip DNS, so they are checked before the
//! request is sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Client settings.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// Allow loopback, private, link-local and other non-public destinations (self-hosted models
    /// on the same network; tests).
    pub allow_private: bool,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for non-streaming calls.
    pub request_timeout: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
        }
    }
}

/// Why a destination was refused or a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL does not parse.
    #[error("the provider URL is invalid")]
    BadUrl,
    /// The destination is a non-public address and the operator does not allow those.
    #[error("the provider URL points to a private or local address, which this flo2 does not allow (FLO2_ALLOW_PRIVATE_UPSTREAMS)")]
    PrivateAddress,
    /// Building the client failed.
    #[error("cannot build the upstream HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// True for addresses that are not on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
        }
    }
}

fn private_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT 100.64.0.0/10
        || o[0] >= 240
}

struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(UpstreamError::PrivateAddress)
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The shared upstream client.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    settings: Arc<UpstreamSettings>,
    /// URLs already parsed and allowed. Parsing (with IDNA host processing) was a few percent
    /// of the gateway's CPU per request, and an organization calls few distinct URLs.
    checked: moka::sync::Cache<String, reqwest::Url>,
}

impl Upstream {
    /// Builds the client.
    pub fn new(settings: UpstreamSettings) -> Result<Self, UpstreamError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("flo2/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private,
            }))
            .build()?;
        Ok(Self {
            client,
            settings: Arc::new(settings),
            checked: moka::sync::Cache::new(10_000),
        })
    }

    /// Refuses IP-literal URLs that point to private addresses (names are checked at resolve time).
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, UpstreamError> {
        if let Some(parsed) = self.checked.get(url) {
            return Ok(parsed);
        }
        let parsed = self.parse_and_check(url)?;
        self.checked.insert(url.to_owned(), parsed.clone());
        Ok(parsed)
    }

    fn parse_and_check(&self, url: &str) -> Result<reqwest::Url, UpstreamError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| UpstreamError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UpstreamError::BadUrl);
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            Some(url::Host::Domain(_)) => None,
            None => return Err(UpstreamError::BadUrl),
        };
        if let Some(ip) = literal {
            if !self.settings.allow_private && is_private(ip) {
                return Err(UpstreamError::PrivateAddress);
            }
        }
        Ok(parsed)
    }

    /// A POST with a JSON body. Streaming calls get no overall timeout (the stream may
    /// legitimately run long); others get the configured one.
    pub fn post(&self, url: reqwest::Url, streaming: bool) -> reqwest::RequestBuilder {
        let builder = self.client.post(url);
        if streaming {
            builder
        } else {
            builder.timeout(self.settings.request_timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused_unless_allowed() {
        let strict = Upstream::new(UpstreamSettings::default()).unwrap();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://[::1]/v1",
            "http://localhost/v1",
            "http://169.254.169.254/latest",
        ] {
            assert!(
                matches!(strict.check_url(url), Err(UpstreamError::PrivateAddress)),
                "{url}"
            );
        }
        assert!(strict.check_url("https://api.openai.com/v1").is_ok());
        assert!(matches!(
            strict.check_url("file:///etc/passwd"),
            Err(UpstreamError::BadUrl)
        ));
        let open = Upstream::new(UpstreamSettings {
            allow_private: true,
            ..UpstreamSettings::default()
        })
        .unwrap();
        assert!(open.check_url("http://127.0.0.1:8080/v1").is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_dial_time() {
        use std::str::FromStr;
        let strict = GuardedResolver {
            allow_private: false,
        };
        let name = Name::from_str("localhost").unwrap();
        assert!(
            strict.resolve(name).await.is_err(),
            "localhost resolves to loopback only"
        );
        let open = GuardedResolver {
            allow_private: true,
        };
        let addrs: Vec<SocketAddr> = open
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
