//! `imgforge health`: asks the local instance whether it is ready, so that a container health
//! check needs neither curl nor a shell. It asks the public listener's `/readyz` when
//! `[server] public_health` is on (what load balancers see), the admin listener's otherwise.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::ServerSettings;

/// Where readiness is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `"public"` or `"admin"`, for messages.
    pub listener: &'static str,
}

/// The readiness endpoint of the instance `server` describes; an address bound to all
/// interfaces is asked on loopback.
pub fn target(server: &ServerSettings) -> Result<Target, String> {
    let (addr, listener) = match (
        server.public_health,
        server.listen.first(),
        server.admin_listen,
    ) {
        (true, Some(a), _) => (*a, "public"),
        (_, _, Some(a)) => (a, "admin"),
        _ => {
            return Err(
                "nothing to ask: enable [server] public_health (with a plain listener) or admin_listen"
                    .into(),
            );
        }
    };
    Ok(Target {
        addr: loopback_if_unspecified(addr),
        listener,
    })
}

fn loopback_if_unspecified(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// `GET /readyz`: `Ok` with the status when it is 2xx (ready), `Err` with what happened otherwise.
pub fn probe(target: Target, timeout: Duration) -> Result<u16, String> {
    let url = format!(
        "http://{}/readyz ({} listener)",
        target.addr, target.listener
    );
    let mut stream = TcpStream::connect_timeout(&target.addr, timeout)
        .map_err(|e| format!("{url}: not answering: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{url}: {e}"))?;
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {}\r\nUser-Agent: imgforge-health\r\nConnection: close\r\n\r\n",
        target.addr
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{url}: no answer: {e}")),
        }
    }
    let status = status_code(&head).ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("{url}: {status} (not ready)"))
    }
}

/// The status code of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\nx"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        let a = loopback_if_unspecified("0.0.0.0:3000".parse().expect("addr"));
        assert_eq!(a, "127.0.0.1:3000".parse().expect("addr"));
        let a = loopback_if_unspecified("[::]:3000".parse().expect("addr"));
        assert_eq!(a, "[::1]:3000".parse().expect("addr"));
        let a = loopback_if_unspecified("10.0.0.1:3000".parse().expect("addr"));
        assert_eq!(a, "10.0.0.1:3000".parse().expect("addr"));
    }
}
