//! SSRF guard (pure): which resolved addresses an absolute source URL may connect to.
//!
//! Checked on the address actually connected to (after DNS, on every redirect), so a host name
//! that resolves to an internal address is refused like the address itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::config::net::AddressPolicy;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation, reserved: never a real image server.
    Special,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Denied::Loopback => "loopback address",
            Denied::Private => "private address",
            Denied::LinkLocal => "link-local address",
            Denied::Special => "special-purpose address",
        })
    }
}

/// Checks one resolved address against the policy.
pub fn check(ip: IpAddr, policy: AddressPolicy) -> Result<(), Denied> {
    let class = classify(ip);
    match class {
        None => Ok(()),
        Some(Denied::Loopback) if policy.allow_loopback => Ok(()),
        Some(Denied::Private) if policy.allow_private => Ok(()),
        Some(Denied::LinkLocal) if policy.allow_link_local => Ok(()),
        Some(d) => Err(d),
    }
}

fn classify(ip: IpAddr) -> Option<Denied> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => embedded_v4(v6).map_or_else(|| classify_v6(v6), classify_v4),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Denied> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some(Denied::Loopback)
    } else if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        // RFC 1918 and CGNAT 100.64.0.0/10.
        Some(Denied::Private)
    } else if ip.is_link_local() {
        Some(Denied::LinkLocal)
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
    {
        Some(Denied::Special)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Denied> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some(Denied::Loopback)
    } else if ip.is_unspecified() || ip.is_multicast() || (s[0] == 0x2001 && s[1] == 0x0db8) {
        Some(Denied::Special)
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some(Denied::Private)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some(Denied::LinkLocal)
    } else {
        None
    }
}

/// IPv4 addresses carried inside IPv6 forms: mapped, compatible, 6to4, NAT64 (well-known and
/// local-use), Teredo (client address, obfuscated).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(m) = ip.to_ipv4_mapped() {
        return Some(m);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(v4(s[6], s[7])); // IPv4-compatible (deprecated)
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2])); // 6to4
    }
    if (s[0] == 0x0064 && s[1] == 0xff9b) && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return Some(v4(s[6], s[7])); // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(v4(!s[6], !s[7])); // Teredo client
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn table() {
        let strict = AddressPolicy::default();
        let cases = [
            ("93.184.216.34", None),
            ("2606:2800:220:1:248:1893:25c8:1946", None),
            ("127.0.0.1", Some(Denied::Loopback)),
            ("127.9.9.9", Some(Denied::Loopback)),
            ("::1", Some(Denied::Loopback)),
            ("10.1.2.3", Some(Denied::Private)),
            ("172.16.0.1", Some(Denied::Private)),
            ("192.168.1.1", Some(Denied::Private)),
            ("100.64.0.1", Some(Denied::Private)),
            ("fd00::1", Some(Denied::Private)),
            ("169.254.169.254", Some(Denied::LinkLocal)),
            ("fe80::1", Some(Denied::LinkLocal)),
            ("0.0.0.0", Some(Denied::Special)),
            ("::", Some(Denied::Special)),
            ("224.0.0.1", Some(Denied::Special)),
            ("255.255.255.255", Some(Denied::Special)),
            ("::ffff:127.0.0.1", Some(Denied::Loopback)),
            ("::ffff:169.254.169.254", Some(Denied::LinkLocal)),
            ("::127.0.0.1", Some(Denied::Loopback)),
            ("2002:7f00:1::", Some(Denied::Loopback)),
            ("64:ff9b::a00:1", Some(Denied::Private)),
            ("64:ff9b:1::c0a8:101", Some(Denied::Private)),
            (
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                Some(Denied::Loopback),
            ),
        ];
        for (addr, want) in cases {
            assert_eq!(check(ip(addr), strict).err(), want, "{addr}");
        }
        let open = AddressPolicy {
            allow_loopback: true,
            allow_private: true,
            allow_link_local: false,
        };
        assert!(check(ip("127.0.0.1"), open).is_ok());
        assert!(check(ip("10.0.0.1"), open).is_ok());
        assert!(check(ip("169.254.169.254"), open).is_err());
        assert!(check(ip("0.0.0.0"), open).is_err());
    }
}
