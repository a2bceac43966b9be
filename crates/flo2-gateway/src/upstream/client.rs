//! The HTTP client for upstream providers: pooled keep-alive connections (HTTP/2 where the
//! server offers it over TLS), no redirects, and no dialling of private addresses unless the
//! operator allows it.
//!
//! The address check runs in the DNS resolver, on the addresses the connection will actually
//! use, so a name that resolves to a public address at check time and a private one at connect
//! time (DNS rebinding) is refused too. IP-literal URLs skip DNS, so they are checked before the
//! request is sent.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use flo2_core::address::is_globally_reachable;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http::{Request, Response, Uri};
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use thread_local::ThreadLocal;

/// An upstream answer: status and headers read, the body still on the wire.
pub type UpstreamResponse = Response<Incoming>;

/// An answer body as a stream of chunks, as they arrive.
pub type BodyStream = BodyDataStream<Incoming>;

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

/// Why a destination was refused or a request could not be sent. Never carries a header value:
/// those hold the tenant's provider key.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL does not parse.
    #[error("the provider URL is invalid")]
    BadUrl,
    /// The destination is a non-public address and the operator does not allow those.
    #[error("the provider URL points to a private or local address, which this flo2 does not allow (FLO2_ALLOW_PRIVATE_UPSTREAMS)")]
    PrivateAddress,
    /// A header (the stored key, usually) is not a valid HTTP header value.
    #[error("the stored provider key cannot be sent in an HTTP header")]
    BadHeader,
    /// The connection was not established within the connect timeout.
    #[error("the provider did not accept a connection in time")]
    ConnectTimeout,
    /// The TLS configuration cannot be built.
    #[error("cannot configure TLS for upstream calls: {0}")]
    Tls(String),
    /// The connection failed or broke before the answer's head arrived.
    #[error("cannot connect")]
    Connect,
}

/// Resolves names for the connector, dropping non-public addresses unless they are allowed.
#[derive(Clone)]
struct GuardedResolver {
    allow_private: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, UpstreamError>> + Send>>;

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = UpstreamError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|_| UpstreamError::Connect)?;
            let allowed: Vec<SocketAddr> = addrs
                .filter(|a| allow_private || is_globally_reachable(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(UpstreamError::PrivateAddress);
            }
            Ok(allowed.into_iter())
        })
    }
}

type Connector = HttpsConnector<HttpConnector<GuardedResolver>>;

type PooledClient = Client<Connector, Full<Bytes>>;

/// The upstream client: hyper's pooled client over rustls (HTTP/2 when the provider offers it
/// by ALPN, HTTP/1.1 keep-alive otherwise). No redirects are followed.
///
/// Each thread has its own connection pool. A pooled connection is driven by a task on the
/// runtime that opened it; a request from another serving thread would wake that runtime's
/// thread twice per call (see `flo2::serving`).
#[derive(Clone)]
pub struct Upstream {
    connector: Connector,
    clients: Arc<ThreadLocal<PooledClient>>,
    /// URLs already parsed and allowed. Parsing (with IDNA host processing) was a few percent
    /// of the gateway's CPU per request, and an organization calls few distinct URLs.
    checked: moka::sync::Cache<String, Uri>,
    allow_private: bool,
}

const AGENT: &str = concat!("flo2/", env!("CARGO_PKG_VERSION"));

impl Upstream {
    /// Builds the client.
    pub fn new(settings: &UpstreamSettings) -> Result<Self, UpstreamError> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            allow_private: settings.allow_private,
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        // The crypto provider is named, not taken from the process default: a dependency that
        // enabled a second provider in rustls would otherwise make this panic at start-up.
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| UpstreamError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            connector: tls,
            clients: Arc::new(ThreadLocal::new()),
            checked: moka::sync::Cache::new(10_000),
            allow_private: settings.allow_private,
        })
    }

    /// This thread's client (built on its first call).
    fn client(&self) -> &PooledClient {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(TokioTimer::new())
                .build(self.connector.clone())
        })
    }

    /// Refuses IP-literal URLs that point to private addresses (names are checked at resolve time).
    pub fn check_url(&self, url: &str) -> Result<Uri, UpstreamError> {
        if let Some(parsed) = self.checked.get(url) {
            return Ok(parsed);
        }
        let parsed = self.parse_and_check(url)?;
        self.checked.insert(url.to_owned(), parsed.clone());
        Ok(parsed)
    }

    fn parse_and_check(&self, url: &str) -> Result<Uri, UpstreamError> {
        // `url` normalizes (IDNA, percent-encoding, dot segments) what `http::Uri` would take
        // verbatim; the normalized form is what gets dialled.
        let parsed = url::Url::parse(url).map_err(|_| UpstreamError::BadUrl)?;
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
            if !self.allow_private && !is_globally_reachable(ip) {
                return Err(UpstreamError::PrivateAddress);
            }
        }
        Uri::try_from(parsed.as_str()).map_err(|_| UpstreamError::BadUrl)
    }

    /// POSTs a JSON `body` to `url` with `headers`, returning once the answer's head is read.
    /// Timeouts beyond the connect timeout are the caller's: a stream may legitimately run long.
    pub async fn post_json<'h>(
        &self,
        url: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        body: Bytes,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let uri = self.check_url(url)?;
        let mut request = Request::post(uri)
            .body(Full::new(body))
            .map_err(|_| UpstreamError::BadUrl)?;
        let map = request.headers_mut();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        map.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        for (name, value) in headers {
            let name = header_name(name)?;
            let mut value = HeaderValue::from_str(value).map_err(|_| UpstreamError::BadHeader)?;
            value.set_sensitive(true);
            map.append(name, value);
        }
        crate::metering::overhead::waiting(self.client().request(request))
            .await
            .map_err(|e| classify(&e))
    }
}

/// The names provider calls carry, parsed once: `HeaderName::from_bytes` copies every name
/// that is not a standard HTTP header into a new allocation.
mod names {
    use http::header::HeaderName;

    pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    pub const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
    pub const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
    pub const X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
}

fn header_name(name: &str) -> Result<HeaderName, UpstreamError> {
    Ok(match name {
        "x-api-key" => names::X_API_KEY,
        "anthropic-version" => names::ANTHROPIC_VERSION,
        "anthropic-beta" => names::ANTHROPIC_BETA,
        "x-goog-api-key" => names::X_GOOG_API_KEY,
        _ => HeaderName::from_bytes(name.as_bytes()).map_err(|_| UpstreamError::BadHeader)?,
    })
}

/// What a failed send means, from the error's causes (the resolver's refusal, a timeout).
fn classify(err: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(UpstreamError::PrivateAddress) = c.downcast_ref::<UpstreamError>() {
            return UpstreamError::PrivateAddress;
        }
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return UpstreamError::ConnectTimeout;
        }
        cause = c.source();
    }
    UpstreamError::Connect
}

/// An answer's body as a stream of chunks.
pub fn body_stream(response: UpstreamResponse) -> BodyStream {
    BodyDataStream::new(response.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_header_names_parse_as_from_bytes_would() {
        for name in [
            "x-api-key",
            "anthropic-version",
            "anthropic-beta",
            "x-goog-api-key",
            "authorization",
        ] {
            let parsed = header_name(name).unwrap();
            assert_eq!(parsed, HeaderName::from_bytes(name.as_bytes()).unwrap());
            assert_eq!(parsed.as_str(), name);
        }
        assert!(matches!(
            header_name("bad name"),
            Err(UpstreamError::BadHeader)
        ));
    }

    #[test]
    fn the_dial_rule_is_the_shared_one() {
        // The full table lives with the rule in flo2-core; these are the cases that used to slip.
        for ip in [
            "198.18.0.1",
            "192.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2001::1",
            "::127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_globally_reachable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused_unless_allowed() {
        let strict = Upstream::new(&UpstreamSettings::default()).unwrap();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://[::1]/v1",
            "http://localhost/v1",
            "http://169.254.169.254/latest",
            "http://0x7f.1/v1",
            "http://[::ffff:127.0.0.1]/v1",
            "http://[64:ff9b::a9fe:a9fe]/v1",
            "http://198.18.0.1/v1",
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
        let open = Upstream::new(&UpstreamSettings {
            allow_private: true,
            ..UpstreamSettings::default()
        })
        .unwrap();
        assert!(open.check_url("http://127.0.0.1:8080/v1").is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_dial_time() {
        use std::str::FromStr;
        use tower::Service as _;
        let mut strict = GuardedResolver {
            allow_private: false,
        };
        let name = Name::from_str("localhost").unwrap();
        assert!(
            matches!(strict.call(name).await, Err(UpstreamError::PrivateAddress)),
            "localhost resolves to loopback only"
        );
        let mut open = GuardedResolver {
            allow_private: true,
        };
        let addrs: Vec<SocketAddr> = open
            .call(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
