//! `[[site]]` validated: host names and the origin (servers or a local root).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::route::{Route, RouteKind, routes};
use crate::error::{ConfigError, Locator};
use crate::schema::{self, HashOn, LbAlgorithm};

/// One website behind the gateway.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub hosts: Vec<HostPattern>,
    pub default: bool,
    pub origin: Origin,
    /// Longest prefix first.
    pub routes: Vec<Route>,
}

/// A host name as configured: exact, or `*.suffix` for any subdomain of `suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// Stored with its leading dot: `*.example.com` → `.example.com`.
    Suffix(String),
}

/// Where a site's content comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    Servers(UpstreamSettings),
    /// A local directory served as the origin.
    Root(PathBuf),
    /// No origin (`[site.origin]` absent): every route is an image route, and only absolute
    /// sources can be fetched.
    None,
}

/// An HTTP origin pool.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub servers: Vec<ServerAddr>,
    pub tls: bool,
    pub sni: Option<String>,
    pub verify_cert: bool,
    pub lb: LbAlgorithm,
    pub hash_on: HashOn,
    pub health_check: Option<HealthCheckSettings>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub retries: usize,
    pub host_header: Option<String>,
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
}

/// One origin server: as written, and the address it resolved to at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub written: String,
    pub host: String,
    pub addr: SocketAddr,
}

/// Active health checking of a pool.
#[derive(Debug, Clone)]
pub struct HealthCheckSettings {
    /// HTTP `GET path` expecting 2xx; `None` = TCP connect check.
    pub path: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub consecutive_failures: usize,
    pub consecutive_successes: usize,
}

/// Validates every `[[site]]`: unique names, hosts claimed once, one default at most.
pub(super) fn sites(
    list: &[toml::Spanned<schema::SiteSection>],
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> Vec<Site> {
    let mut sites = Vec::new();
    let mut names = HashSet::new();
    let mut hosts_seen: HashSet<HostPattern> = HashSet::new();
    let mut defaults = 0;
    for s in list {
        let span = s.span();
        let s = s.get_ref();
        if !names.insert(s.name.get_ref().clone()) {
            errs.push(loc.at(
                s.name.span(),
                "site.name",
                format!("duplicate site name {:?}", s.name.get_ref()),
            ));
        }
        if s.name.get_ref().is_empty() {
            errs.push(loc.at(s.name.span(), "site.name", "must not be empty"));
        }
        if s.default {
            defaults += 1;
            if defaults > 1 {
                errs.push(loc.at(
                    span.clone(),
                    "site.default",
                    "more than one site has default = true",
                ));
            }
        }
        let mut hosts = Vec::new();
        for h in &s.hosts {
            match host_pattern(h.get_ref()) {
                Ok(p) => {
                    if !hosts_seen.insert(p.clone()) {
                        errs.push(loc.at(
                            h.span(),
                            "site.hosts",
                            format!("host {:?} is claimed by two sites", h.get_ref()),
                        ));
                    }
                    hosts.push(p);
                }
                Err(m) => errs.push(loc.at(h.span(), "site.hosts", m)),
            }
        }
        if hosts.is_empty() && !s.default {
            errs.push(loc.at(
                span.clone(),
                "site.hosts",
                format!(
                    "site {:?} has no hosts and is not the default site: no request could reach it",
                    s.name.get_ref()
                ),
            ));
        }
        let origin = match &s.origin {
            Some(o) => origin(o, loc, errs),
            None => Origin::None,
        };
        let local = matches!(origin, Origin::Root(_));
        let routes = routes(&s.route, local, loc, errs);
        if matches!(origin, Origin::None)
            && routes.iter().any(|r| matches!(r.kind, RouteKind::Proxy))
        {
            errs.push(loc.at(
                span.clone(),
                "site.origin",
                format!(
                    "site {:?} has no [site.origin]: only routes with kind = \"imgproxy\" (absolute sources) can serve it; add [site.origin] with servers or root",
                    s.name.get_ref()
                ),
            ));
        }
        sites.push(Site {
            name: s.name.get_ref().clone(),
            hosts,
            default: s.default,
            origin,
            routes,
        });
    }
    sites
}

/// Parses `example.com` or `*.example.com` (lower-cased; ports are not part of a host name).
pub fn host_pattern(text: &str) -> Result<HostPattern, String> {
    let t = text.trim().to_ascii_lowercase();
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if let Some(suffix) = t.strip_prefix("*.") {
        if valid(suffix) {
            return Ok(HostPattern::Suffix(format!(".{suffix}")));
        }
    } else if valid(&t) {
        return Ok(HostPattern::Exact(t));
    }
    Err(format!(
        "invalid host {text:?}: expected a host name such as \"shop.example.com\" or \"*.example.com\" (no port, no scheme)"
    ))
}

fn origin(
    o: &toml::Spanned<schema::OriginSection>,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> Origin {
    let span = o.span();
    let o = o.get_ref();
    match (&o.root, o.servers.is_empty()) {
        // Whether it is a directory is checked by `resolve`.
        (Some(root), true) => return Origin::Root(loc.resolve(root.get_ref())),
        (Some(root), false) => {
            errs.push(loc.at(
                root.span(),
                "site.origin",
                "give either servers or root, not both",
            ));
        }
        (None, true) => {
            errs.push(loc.at(
                span.clone(),
                "site.origin",
                "expected servers = [\"host:port\", …] or root = \"DIR\"",
            ));
        }
        (None, false) => {}
    }
    let mut servers = Vec::new();
    for s in &o.servers {
        match parse_server(s.get_ref()) {
            Ok(a) => servers.push(a),
            Err(m) => errs.push(loc.at(s.span(), "site.origin.servers", m)),
        }
    }
    let health_check = o.health_check.as_ref().map(|h| {
        if let Some(p) = &h.path
            && !p.starts_with('/')
        {
            errs.push(loc.at(
                span.clone(),
                "site.origin.health_check.path",
                format!("{p:?} must start with '/'"),
            ));
        }
        if h.interval.0.is_zero() {
            errs.push(loc.at(
                span.clone(),
                "site.origin.health_check.interval",
                "must be greater than zero",
            ));
        }
        HealthCheckSettings {
            path: h.path.clone(),
            interval: h.interval.0,
            timeout: h.timeout.0,
            consecutive_failures: h.consecutive_failures.max(1),
            consecutive_successes: h.consecutive_successes.max(1),
        }
    });
    let mut request_headers = Vec::new();
    for (k, v) in &o.request_headers {
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(k), Ok(v)) => request_headers.push((k, v)),
            _ => errs.push(loc.at(
                span.clone(),
                "site.origin.request_headers",
                format!("invalid header {k:?}: {v:?}"),
            )),
        }
    }
    if let Some(h) = &o.host_header
        && (HeaderValue::try_from(h.as_str()).is_err() || h.is_empty())
    {
        errs.push(loc.at(
            span.clone(),
            "site.origin.host_header",
            format!("invalid host header {h:?}"),
        ));
    }
    for (key, d) in [
        ("site.origin.connect_timeout", o.connect_timeout.0),
        ("site.origin.read_timeout", o.read_timeout.0),
    ] {
        if d.is_zero() {
            errs.push(loc.at(span.clone(), key, "must be greater than zero"));
        }
    }
    Origin::Servers(UpstreamSettings {
        servers,
        tls: o.tls,
        sni: o.sni.clone(),
        verify_cert: o.verify_cert,
        lb: o.lb,
        hash_on: o.hash_on,
        health_check,
        connect_timeout: o.connect_timeout.0,
        read_timeout: o.read_timeout.0,
        retries: o.retries,
        host_header: o.host_header.clone(),
        request_headers,
    })
}

/// `HOST:PORT` → address, without looking anything up: an IP literal is the address; a name
/// gets the unspecified address (`0.0.0.0`) with its port until `resolve` looks it up.
pub(crate) fn parse_server(text: &str) -> Result<ServerAddr, String> {
    let bad = || {
        format!(
            "invalid server {text:?}: expected HOST:PORT, e.g. \"10.0.0.5:80\" or \"images.internal:8080\""
        )
    };
    if text.contains("://") || text.contains('/') {
        return Err(bad());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
    if host.is_empty() {
        return Err(bad());
    }
    let addr = text
        .parse::<SocketAddr>()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], port)));
    Ok(ServerAddr {
        written: text.to_string(),
        host,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert_eq!(
            host_pattern("Shop.Example.com"),
            Ok(HostPattern::Exact("shop.example.com".into()))
        );
        assert_eq!(
            host_pattern("*.example.com"),
            Ok(HostPattern::Suffix(".example.com".into()))
        );
        for bad in [
            "", "*.", "a..b", "http://x", "x:80", "*x.com", "a.*.com", "sp ace",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_are_parsed_without_lookups() {
        let s = parse_server("127.0.0.1:8080").expect("valid");
        assert_eq!(s.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(s.host, "127.0.0.1");
        for bad in ["127.0.0.1", "http://a:80", "a:99999", ":80", "a:80/x"] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
        // A name is not looked up (one that could never resolve passes), literals are kept.
        let s = parse_server("no-such-host.invalid:8080").expect("name");
        assert_eq!(s.addr, "0.0.0.0:8080".parse().expect("addr"));
        assert_eq!(s.host, "no-such-host.invalid");
        let s = parse_server("[::1]:81").expect("literal");
        assert_eq!(s.addr, "[::1]:81".parse().expect("addr"));
    }
}
