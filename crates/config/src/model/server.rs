//! `[server]` validated: listeners, TLS, client limits.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::route::{RateLimit, rate};
use crate::error::{ConfigError, Locator};
use crate::net::Cidr;
use crate::schema;

/// `[server]`, validated.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub threads: usize,
    pub grace_period: Duration,
    pub upgrade_sock: String,
    pub pid_file: String,
    pub admin_token: Option<String>,
    pub tls: Option<TlsSettings>,
    pub trusted_proxies: Vec<Cidr>,
    pub rate_limit_exempt: Vec<Cidr>,
    pub global_rate_limit: Option<RateLimit>,
    pub max_requests_per_client: u32,
    /// Simultaneous downstream connections on the public listeners (0 = no cap).
    pub max_connections: u32,
    /// Longest request target accepted, in bytes (longer → 414).
    pub max_url_length: u64,
    /// Largest request header block accepted, in bytes (larger → 431).
    pub max_header_size: u64,
    /// `/healthz` and `/readyz` answered on the public listeners, before routing.
    pub public_health: bool,
}

/// `[server.tls]`, validated (`resolve` checks that the files exist).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: Vec<SocketAddr>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn socket_addr(
    text: &toml::Spanned<String>,
    key: &str,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> Option<SocketAddr> {
    match text.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(loc.at(
                text.span(),
                key,
                format!(
                    "invalid listen address {:?}: expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::]:8080\"",
                    text.get_ref()
                ),
            ));
            None
        }
    }
}

pub(super) fn server(
    s: &schema::ServerSection,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> ServerSettings {
    let listen: Vec<SocketAddr> = s
        .listen
        .iter()
        .filter_map(|l| socket_addr(l, "server.listen", loc, errs))
        .collect();
    if s.listen.is_empty() && s.tls.is_none() {
        errs.push(loc.whole(
            "server.listen",
            "no listener: give at least one address or [server.tls]",
        ));
    }
    let mut seen = HashSet::new();
    for (a, w) in listen.iter().zip(&s.listen) {
        if !seen.insert(*a) {
            errs.push(loc.at(
                w.span(),
                "server.listen",
                format!("address {a} is listed twice"),
            ));
        }
    }
    let admin_listen = if s.admin_listen.get_ref().is_empty() {
        None
    } else {
        let a = socket_addr(&s.admin_listen, "server.admin_listen", loc, errs);
        if let Some(a) = a
            && listen.contains(&a)
        {
            errs.push(loc.at(
                s.admin_listen.span(),
                "server.admin_listen",
                format!("{a} is also a public listener: the admin listener needs its own address"),
            ));
        }
        a
    };
    if s.threads == 0 {
        errs.push(loc.whole("server.threads", "must be at least 1"));
    }
    // Below these, ordinary browsers' requests (cookies, client hints) would be refused.
    if s.max_url_length.0 < 256 {
        errs.push(loc.whole("server.max_url_length", "must be at least 256 bytes"));
    }
    if s.max_header_size.0 < 1024 {
        errs.push(loc.whole("server.max_header_size", "must be at least 1KiB"));
    }
    let tls = s.tls.as_ref().map(|t| {
        let span = t.span();
        let t = t.get_ref();
        let mut listen = Vec::new();
        for l in &t.listen {
            match l.parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => errs.push(loc.at(
                    span.clone(),
                    "server.tls.listen",
                    format!("invalid listen address {l:?}: expected IP:PORT"),
                )),
            }
        }
        // Whether the files exist is checked by `resolve`.
        let (cert, key) = (loc.resolve(&t.cert), loc.resolve(&t.key));
        TlsSettings { listen, cert, key }
    });
    let mut cidrs = |key: &str, list: &[String]| -> Vec<Cidr> {
        list.iter()
            .filter_map(|c| {
                Cidr::parse(c)
                    .map_err(|m| errs.push(loc.whole(key, m)))
                    .ok()
            })
            .collect()
    };
    let trusted_proxies = cidrs("server.trusted_proxies", &s.trusted_proxies);
    let rate_limit_exempt = cidrs("server.rate_limit_exempt", &s.rate_limit_exempt);
    let global_rate_limit = s.global_rate_limit.as_ref().and_then(|rl| {
        rate_limit(rl)
            .map_err(|m| errs.push(loc.whole("server.global_rate_limit.rate", m)))
            .ok()
    });
    ServerSettings {
        max_requests_per_client: s.max_requests_per_client,
        max_connections: s.max_connections,
        max_url_length: s.max_url_length.0,
        max_header_size: s.max_header_size.0,
        public_health: s.public_health,
        trusted_proxies,
        rate_limit_exempt,
        global_rate_limit,
        listen,
        admin_listen,
        threads: s.threads,
        grace_period: s.grace_period.0,
        upgrade_sock: s.upgrade_sock.clone(),
        pid_file: s.pid_file.clone(),
        admin_token: s.admin_token.clone(),
        tls,
    }
}

fn rate_limit(rl: &schema::RateLimitSection) -> Result<RateLimit, String> {
    let per_second = rate(&rl.rate)?;
    Ok(RateLimit {
        per_second,
        // Without a burst, one second's worth of requests may arrive at once.
        burst: rl
            .burst
            .unwrap_or_else(|| per_second.ceil().max(1.0) as u32)
            .max(1),
    })
}
