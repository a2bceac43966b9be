//! Who is on the other end of a request: the TCP peer, or, when the peer is a reverse proxy the
//! operator trusts (`FLO2_TRUSTED_PROXIES`), the client that proxy names in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list that each proxy appends its own peer to, so only its right end is
//! written by proxies the operator runs; anything to the left of the first untrusted entry was
//! written by the client and is ignored. The address is therefore found by walking the list from
//! the right, skipping trusted hops, and taking the first address that is not trusted. From an
//! untrusted peer the header is ignored altogether, so nobody can pick their own address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::ConsoleState;

/// One block of addresses, such as `10.0.0.0/8`, `fd00::/8` or a single `192.0.2.7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A CIDR block that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address block such as 10.0.0.0/8, fd00::/8 or 192.0.2.7")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| bad())?);
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err(bad());
        }
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `address` lies in the block.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parses a comma-separated list of blocks (the form of `FLO2_TRUSTED_PROXIES`).
pub fn parse_list(text: &str) -> Result<Vec<Cidr>, BadCidr> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.7`, what a dual-stack socket reports) is
/// the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: a bare address, or one with a port (`192.0.2.7:443`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The client's address: `peer` itself unless `peer` is in `trusted`, in which case the
/// right-most `X-Forwarded-For` entry that is not a trusted hop. A malformed entry ends the
/// walk at the last trusted hop, which is then the best known address.
pub fn client_address(headers: &HeaderMap, peer: SocketAddr, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut current = canonical(peer.ip());
    if !is_trusted(current) {
        return current;
    }
    // Every header line, in order, as one list (proxies may add lines instead of appending).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        match forwarded_entry(entry) {
            Some(ip) => {
                current = ip;
                if !is_trusted(ip) {
                    return ip;
                }
            }
            None => return current,
        }
    }
    current
}

/// The key one client is counted under by throttles: its IPv4 address, or the /64 its IPv6
/// address lies in (one subscriber usually holds a whole /64, so single IPv6 addresses are free
/// to an attacker).
pub fn throttle_key(address: IpAddr) -> String {
    match canonical(address) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// The client address of a console request ([`client_address`] under the console's trusted
/// proxies), for handlers and other features (login throttling, the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The client address of the request `parts` belong to.
    pub fn of(parts: &Parts, state: &ConsoleState) -> Self {
        // The server always sets the peer; without one (a test calling the router directly)
        // the request is counted as coming from an unknown, untrusted address.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |c| c.0);
        ClientAddress(client_address(
            &parts.headers,
            peer,
            &state.settings.trusted_proxies,
        ))
    }
}

impl FromRequestParts<ConsoleState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), 40000)
    }

    #[test]
    fn blocks_parse_and_contain() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "v4-mapped is v4");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("::1")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in ["", "10.0.0.0/33", "::/129", "nope", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(parse_list(" 127.0.0.1/8, ::1 ,").unwrap().len(), 2);
        assert!(parse_list("127.0.0.1/8,junk").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = parse_list("10.0.0.0/8").unwrap();
        let h = xff(&["198.51.100.1"]);
        assert_eq!(
            client_address(&h, peer("203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(&h, peer("203.0.113.9"), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_from_the_right() {
        let trusted = parse_list("10.0.0.0/8, 127.0.0.1").unwrap();
        // The client prepended a lie; the proxy appended the real peer.
        let h = xff(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(
            client_address(&h, peer("10.0.0.2"), &trusted),
            ip("198.51.100.7")
        );
        // Two trusted hops, split over two header lines.
        let h = xff(&["1.2.3.4, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_address(&h, peer("127.0.0.1"), &trusted),
            ip("198.51.100.7")
        );
        // Ports and brackets as some proxies write them.
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_address(&h, peer("10.0.0.2"), &trusted),
            ip("2001:db8::1")
        );
        // Garbage ends the walk at the last trusted hop.
        let h = xff(&["198.51.100.7, garbage, 10.0.0.5"]);
        assert_eq!(
            client_address(&h, peer("10.0.0.2"), &trusted),
            ip("10.0.0.5")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(&HeaderMap::new(), peer("10.0.0.2"), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:bbbb::9")),
            throttle_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(throttle_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
