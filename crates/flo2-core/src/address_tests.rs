#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

fn reachable(ip: &str) -> bool {
    is_globally_reachable(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
}

/// Each refused block by its first and last address, written out by hand (not computed from
/// the table under test), with the nearest public neighbours where the block has one.
const REFUSED_EDGES: &[(&str, &str)] = &[
    ("0.0.0.0", "0.255.255.255"),
    ("10.0.0.0", "10.255.255.255"),
    ("100.64.0.0", "100.127.255.255"),
    ("127.0.0.0", "127.255.255.255"),
    ("169.254.0.0", "169.254.255.255"),
    ("172.16.0.0", "172.31.255.255"),
    ("192.0.0.0", "192.0.0.255"),
    ("192.0.0.9", "192.0.0.10"),
    ("192.0.0.170", "192.0.0.171"),
    ("192.0.2.0", "192.0.2.255"),
    ("192.88.99.0", "192.88.99.255"),
    ("192.168.0.0", "192.168.255.255"),
    ("198.18.0.0", "198.19.255.255"),
    ("198.51.100.0", "198.51.100.255"),
    ("203.0.113.0", "203.0.113.255"),
    ("224.0.0.0", "239.255.255.255"),
    ("240.0.0.0", "255.255.255.254"),
    ("255.255.255.255", "255.255.255.255"),
    // IPv6
    ("::", "::"),
    ("::1", "::1"),
    ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"),
    ("100::", "100::ffff:ffff:ffff:ffff"),
    ("100:0:0:1::", "100::1:ffff:ffff:ffff:ffff"),
    ("2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001:1::1", "2001:1::3"),
    ("2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"),
    ("2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    // Outside global unicast 2000::/3.
    ("4000::", "4000::1"),
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "e000::"),
];

/// Public addresses just outside the refused blocks (and a few well-known ones).
const PUBLIC: &[&str] = &[
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.3.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
    "1.1.1.1",
    "8.8.8.8",
    // IPv6
    "2000::",
    "2001:200::",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2606:4700::1111",
    "2a00:1450:4001:80b::200e",
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
    "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
];

#[test]
fn both_edges_of_every_refused_block_are_refused() {
    for (first, last) in REFUSED_EDGES {
        assert!(!reachable(first), "{first} must be refused");
        assert!(!reachable(last), "{last} must be refused");
    }
}

#[test]
fn public_neighbours_of_the_refused_blocks_are_allowed() {
    for ip in PUBLIC {
        assert!(reachable(ip), "{ip} is public");
    }
}

#[test]
fn ipv6_forms_that_embed_ipv4_are_judged_by_the_ipv4_address() {
    for (refused, allowed) in [
        // IPv4-mapped ::ffff:0:0/96
        ("::ffff:127.0.0.1", "::ffff:8.8.8.8"),
        ("::ffff:169.254.169.254", "::ffff:1.1.1.1"),
        ("::ffff:0.0.0.0", "::ffff:203.0.114.1"),
        ("::ffff:255.255.255.255", "::ffff:223.255.255.255"),
        // IPv4-compatible ::/96 (deprecated)
        ("::127.0.0.1", "::8.8.8.8"),
        ("::10.0.0.1", "::1.1.1.1"),
        ("::0.0.0.2", "::198.20.0.0"),
        // NAT64 well-known prefix 64:ff9b::/96: the translator dials the embedded address.
        ("64:ff9b::7f00:1", "64:ff9b::808:808"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::101:101"),
        ("64:ff9b::c612:1", "64:ff9b::c614:0"),
        ("64:ff9b::", "64:ff9b::100:0"),
        // 6to4 2002::/16: the IPv4 address is in bits 16..48.
        ("2002:7f00:1::", "2002:808:808::"),
        ("2002:a00:1::1", "2002:101:101::1"),
        ("2002:c000:0::", "2002:c000:300::"),
        ("2002::", "2002:100::"),
        (
            "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2002:dfff:ffff::",
        ),
    ] {
        assert!(!reachable(refused), "{refused} must be refused");
        assert!(reachable(allowed), "{allowed} is public");
    }
}

#[test]
fn the_docs_list_every_refused_block() {
    let docs = include_str!("../../../docs/ssrf.md");
    for block in REFUSED_V4 {
        let cidr = format!("{}/{}", Ipv4Addr::from(block.network), block.prefix_len);
        assert!(
            docs.contains(&format!("`{cidr}`")),
            "docs/ssrf.md misses {cidr}"
        );
    }
    for block in REFUSED_V6 {
        let cidr = format!("{}/{}", Ipv6Addr::from(block.network), block.prefix_len);
        assert!(
            docs.contains(&format!("`{cidr}`")),
            "docs/ssrf.md misses {cidr}"
        );
    }
}
