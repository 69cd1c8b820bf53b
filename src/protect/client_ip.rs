//! The real client address: the peer, or — only when the peer is a trusted proxy — the
//! right-most untrusted address of `X-Forwarded-For`.

use std::net::IpAddr;

pub use crate::config::net::Cidr;

/// Whether any block contains `ip`.
pub fn any_contains(blocks: &[Cidr], ip: IpAddr) -> bool {
    blocks.iter().any(|b| b.contains(ip))
}

/// The client address of a request from `peer` carrying `xff`.
pub fn client_ip(peer: IpAddr, xff: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    if !any_contains(trusted, peer) {
        return peer;
    }
    let Some(xff) = xff else { return peer };
    let mut client = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !any_contains(trusted, ip) {
                    break;
                }
            }
            // A malformed entry ends what can be trusted.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn blocks() {
        let b = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(b.contains(ip("10.200.1.1")));
        assert!(b.contains(ip("::ffff:10.1.1.1")));
        assert!(!b.contains(ip("11.0.0.1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        assert!(
            Cidr::parse("2001:db8::/32")
                .expect("v6")
                .contains(ip("2001:db8::1"))
        );
        assert!(Cidr::parse("::1").expect("one").contains(ip("::1")));
        for bad in ["10.0.0.0/33", "x/8", "10.0.0.0/", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        assert_eq!(
            client_ip(ip("1.2.3.4"), Some("9.9.9.9"), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("9.9.9.9"), &trusted),
            ip("9.9.9.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("6.6.6.6, 9.9.9.9, 10.0.0.2"), &trusted),
            ip("9.9.9.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("garbage"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
    }
}
