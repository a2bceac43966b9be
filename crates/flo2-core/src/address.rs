//! Which IP addresses flo2 may dial on a tenant's behalf: the rule behind the SSRF check.
//!
//! A provider base URL is chosen by a tenant, so flo2 must not let it reach the operator's own
//! network (loopback, private ranges, cloud metadata at 169.254.169.254, ...). The rule is one
//! pure function, [`is_globally_reachable`], used both when a base URL is saved (the console) and
//! on every address the gateway dials. It follows the IANA IPv4 and IPv6 Special-Purpose Address
//! Registries (every block they mark not globally reachable is refused), adds multicast and the
//! IPv6 space outside global unicast (`2000::/3`), and judges addresses that embed an IPv4
//! address (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) by the IPv4
//! address they carry. `docs/ssrf.md` lists every block and explains the choices.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A block of addresses that flo2 refuses to dial, with the name the registry gives it.
#[derive(Clone, Copy, Debug)]
pub struct RefusedBlock<T> {
    /// The first address of the block, as an integer.
    pub network: T,
    /// The prefix length.
    pub prefix_len: u32,
    /// The registry's name for the block.
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u32, name: &'static str) -> RefusedBlock<u32> {
    RefusedBlock {
        network: u32::from_be_bytes([a, b, c, d]),
        prefix_len,
        name,
    }
}

const fn v6(network: u128, prefix_len: u32, name: &'static str) -> RefusedBlock<u128> {
    RefusedBlock {
        network,
        prefix_len,
        name,
    }
}

/// IPv4 blocks that are refused. The whole of 192.0.0.0/24 is refused, including the two
/// anycast addresses in it that the registry marks reachable (192.0.0.9, 192.0.0.10): no
/// provider API is served from them.
pub const REFUSED_V4: &[RefusedBlock<u32>] = &[
    v4(0, 0, 0, 0, 8, "\"This network\" (RFC 791)"),
    v4(10, 0, 0, 0, 8, "Private-Use (RFC 1918)"),
    v4(100, 64, 0, 0, 10, "Shared Address Space (RFC 6598)"),
    v4(127, 0, 0, 0, 8, "Loopback (RFC 1122)"),
    v4(169, 254, 0, 0, 16, "Link Local (RFC 3927)"),
    v4(172, 16, 0, 0, 12, "Private-Use (RFC 1918)"),
    v4(192, 0, 0, 0, 24, "IETF Protocol Assignments (RFC 6890)"),
    v4(192, 0, 2, 0, 24, "Documentation (TEST-NET-1) (RFC 5737)"),
    v4(
        192,
        88,
        99,
        0,
        24,
        "Deprecated (6to4 Relay Anycast) (RFC 7526)",
    ),
    v4(192, 168, 0, 0, 16, "Private-Use (RFC 1918)"),
    v4(198, 18, 0, 0, 15, "Benchmarking (RFC 2544)"),
    v4(198, 51, 100, 0, 24, "Documentation (TEST-NET-2) (RFC 5737)"),
    v4(203, 0, 113, 0, 24, "Documentation (TEST-NET-3) (RFC 5737)"),
    v4(224, 0, 0, 0, 4, "Multicast (RFC 5771)"),
    v4(240, 0, 0, 0, 4, "Reserved (RFC 1112)"),
    v4(255, 255, 255, 255, 32, "Limited Broadcast (RFC 919)"),
];

/// IPv6 blocks that are refused. Everything outside `2000::/3` is refused as well (the IPv6
/// Address Space registry reserves it), so several entries below are there for their names.
/// The whole of 2001::/23 is refused, including the few anycast and AMT/AS112/DET blocks in it
/// that the registry marks reachable: no provider API is served from them.
pub const REFUSED_V6: &[RefusedBlock<u128>] = &[
    v6(0, 128, "Unspecified Address (RFC 4291)"),
    v6(1, 128, "Loopback Address (RFC 4291)"),
    v6(
        0x0064_ff9b_0001 << 80,
        48,
        "Local-Use IPv4/IPv6 Translation (RFC 8215)",
    ),
    v6(0x0100 << 112, 64, "Discard-Only Address Block (RFC 6666)"),
    v6(
        0x0100_0000_0000_0001 << 64,
        64,
        "Dummy IPv6 Prefix (RFC 9780)",
    ),
    v6(0x2001 << 112, 23, "IETF Protocol Assignments (RFC 2928)"),
    v6(0x2001 << 112, 32, "TEREDO (RFC 4380)"),
    v6(0x2001_0002 << 96, 48, "Benchmarking (RFC 5180)"),
    v6(
        0x2001_0010 << 96,
        28,
        "Deprecated (previously ORCHID) (RFC 4843)",
    ),
    v6(0x2001_0020 << 96, 28, "ORCHIDv2 (RFC 7343)"),
    v6(0x2001_0db8 << 96, 32, "Documentation (RFC 3849)"),
    v6(0x3fff << 112, 20, "Documentation (RFC 9637)"),
    v6(0x5f00 << 112, 16, "Segment Routing (SRv6) SIDs (RFC 9602)"),
    v6(0xfc00 << 112, 7, "Unique-Local (RFC 4193)"),
    v6(0xfe80 << 112, 10, "Link-Local Unicast (RFC 4291)"),
    v6(0xfec0 << 112, 10, "Site-Local, deprecated (RFC 3879)"),
    v6(0xff00 << 112, 8, "Multicast (RFC 4291)"),
];

/// True when `ip` may be dialled on a tenant's behalf: it is not in any block the IANA
/// special-purpose registries mark not globally reachable, not multicast or broadcast, and,
/// for IPv6 forms that embed an IPv4 address, the embedded address passes the same rule.
pub fn is_globally_reachable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_reachable(v4),
        IpAddr::V6(v6) => v6_reachable(v6),
    }
}

fn v4_reachable(ip: Ipv4Addr) -> bool {
    find(REFUSED_V4, u32::from(ip), 32).is_none()
}

fn v6_reachable(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if let Some(embedded) = embedded_v4(bits) {
        return v4_reachable(embedded);
    }
    if find(REFUSED_V6, bits, 128).is_some() {
        return false;
    }
    // Global unicast 2000::/3 is the only space IANA allocates.
    bits >> 125 == 0b001
}

/// The IPv4 address carried by an IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`,
/// except `::` and `::1`), NAT64 well-known (`64:ff9b::/96`) or 6to4 (`2002::/16`) address:
/// these reach, or are translated to, that IPv4 address.
fn embedded_v4(bits: u128) -> Option<Ipv4Addr> {
    // Truncation is intended: the low 32 bits (or bits 80..112 for 6to4) are the IPv4 address.
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff {
        return Some(low);
    }
    if bits >> 32 == 0 && bits > 1 {
        return Some(low);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low);
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether `addr` lies in `block` (for addresses of `width` bits).
fn contains<T>(block: &RefusedBlock<T>, addr: T, width: u32) -> bool
where
    T: Copy + std::ops::BitXor<Output = T> + std::ops::Shr<u32, Output = T> + PartialEq + Default,
{
    let host_bits = width - block.prefix_len.min(width);
    if host_bits == width {
        return true;
    }
    (addr ^ block.network) >> host_bits == T::default()
}

fn find<T>(blocks: &'static [RefusedBlock<T>], addr: T, width: u32) -> Option<&'static str>
where
    T: Copy + std::ops::BitXor<Output = T> + std::ops::Shr<u32, Output = T> + PartialEq + Default,
{
    blocks
        .iter()
        .find(|b| contains(b, addr, width))
        .map(|b| b.name)
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
