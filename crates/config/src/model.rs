//! What the code uses: the validated runtime model, built once from the schema.
//!
//! Validation collects every problem it finds (not only the first), each with its position.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::error::{ConfigError, Locator};
use super::schema::{self, FileConfig, HashOn, LbAlgorithm, LogFormat, RouteKindName};
use crate::net::Cidr;
use imgforge_imgproxy::{Presets, RouteSettings, SourcePattern, hex_key_pairs};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for reload and messages).
    pub path: PathBuf,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub transform: TransformSettings,
    pub cache: CacheSettings,
    pub metrics: MetricsSettings,
    pub tracing: super::TracingSettings,
    pub sites: Vec<Site>,
}

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
}

/// `[server.tls]`, validated (files exist).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: Vec<SocketAddr>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub access_log: bool,
}

/// `[transform]`
#[derive(Debug, Clone)]
pub struct TransformSettings {
    pub workers: usize,
    pub queue: usize,
    pub timeout: Duration,
    pub max_src_resolution_mp: f64,
    pub max_src_file_size: u64,
    pub max_animation_frames: u32,
    pub max_animation_frame_resolution_mp: f64,
    pub max_result_dimension: u32,
    pub avif_speed: u8,
    pub jpeg_progressive: bool,
    pub formats: Vec<imgforge_imgproxy::Format>,
}

/// `[cache]`
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub memory_size: u64,
    pub disk_path: Option<PathBuf>,
    pub disk_size: u64,
    pub status_header: bool,
    pub lock_timeout: Duration,
}

/// `[metrics]`
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Prefix of the imgproxy-compatible families (valid, possibly empty).
    pub namespace: String,
}

impl CacheSettings {
    /// Whether any tier is configured.
    pub fn enabled(&self) -> bool {
        self.memory_size > 0 || self.disk_path.is_some()
    }
}

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

/// A path prefix of a site and what handles it.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    pub kind: RouteKind,
    pub rate_limit: Option<RateLimit>,
    /// `None`: responses of this route are not cached.
    pub cache: Option<CachePolicy>,
    /// Bearer tokens a request must present (any one); empty = no auth.
    pub auth_tokens: Vec<String>,
}

/// How a route's responses are cached.
#[derive(Debug, Clone, PartialEq)]
pub struct CachePolicy {
    /// Freshness when the response gives none.
    pub default_ttl: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

/// What serves a route.
#[derive(Debug, Clone)]
pub enum RouteKind {
    /// Plain reverse proxy to the site's origin.
    Proxy,
    /// imgproxy v4 URL API.
    Imgproxy(Box<ImageRoute>),
}

impl RouteKind {
    /// The name used in logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            RouteKind::Proxy => "proxy",
            RouteKind::Imgproxy(_) => "imgproxy",
        }
    }
}

/// An image route: the URL API settings plus what the image service needs.
#[derive(Debug, Clone)]
pub struct ImageRoute {
    /// Keys, presets, allowed sources, negotiation, quality defaults (validated).
    pub settings: RouteSettings,
    /// The `wm:` image, read at start-up.
    pub watermark: Option<std::sync::Arc<bytes::Bytes>>,
    /// Which addresses absolute sources may resolve to.
    pub source_policy: crate::net::AddressPolicy,
}

/// Token-bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Validates the schema into the runtime model.
pub(crate) fn build(file: FileConfig, loc: &Locator<'_>) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let server = server(&file.server, loc, &mut errs);
    let log = LogSettings {
        format: file.log.format,
        level: file.log.level.clone(),
        access_log: file.log.access_log,
    };
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        errs.push(loc.whole(
            "log.level",
            format!(
                "invalid level {:?}: expected error, warn, info, debug, trace or a filter directive",
                log.level
            ),
        ));
    }
    let t = &file.transform;
    if t.workers == 0 {
        errs.push(loc.whole("transform.workers", "must be at least 1"));
    }
    if !(t.max_src_resolution > 0.0 && t.max_src_resolution.is_finite()) {
        errs.push(loc.whole(
            "transform.max_src_resolution",
            "expected a positive number of megapixels",
        ));
    }
    let transform = TransformSettings {
        workers: t.workers,
        queue: t.queue,
        timeout: t.timeout.0,
        max_src_resolution_mp: t.max_src_resolution,
        max_src_file_size: t.max_src_file_size.0,
        max_animation_frames: t.max_animation_frames.max(1),
        max_animation_frame_resolution_mp: t.max_animation_frame_resolution.max(0.0),
        max_result_dimension: t.max_result_dimension,
        avif_speed: t.avif_speed,
        jpeg_progressive: t.jpeg_progressive,
        formats: t
            .formats
            .iter()
            .filter_map(|f| match imgforge_imgproxy::Format::from_name(f) {
                Some(fmt) if fmt.is_output() => Some(fmt),
                _ => {
                    errs.push(loc.whole(
                        "transform.formats",
                        format!(
                            "{f:?} is not an output format: expected jpeg, png, webp, avif or gif"
                        ),
                    ));
                    None
                }
            })
            .collect(),
    };
    if t.avif_speed > 9 {
        errs.push(loc.whole("transform.avif_speed", "expected 0 (slow) to 9 (fast)"));
    }
    let cache = CacheSettings {
        memory_size: file.cache.memory_size.0,
        disk_path: file.cache.disk_path.as_deref().map(|p| loc.resolve(p)),
        disk_size: file.cache.disk_size.0,
        status_header: file.cache.status_header,
        lock_timeout: file.cache.lock_timeout.0,
    };
    if let Err(m) = crate::metrics::check_namespace(&file.metrics.namespace) {
        errs.push(loc.whole("metrics.namespace", m));
    }
    let metrics = MetricsSettings {
        namespace: file.metrics.namespace.clone(),
    };
    let tracing = super::traces::settings(&file.tracing, loc, &mut errs);

    let mut sites = Vec::new();
    let mut names = HashSet::new();
    let mut hosts_seen: HashSet<HostPattern> = HashSet::new();
    let mut defaults = 0;
    for s in &file.site {
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
        let origin = origin(&s.origin, loc, &mut errs);
        let local = matches!(origin, Origin::Root(_));
        let routes = routes(&s.route, local, loc, &mut errs);
        sites.push(Site {
            name: s.name.get_ref().clone(),
            hosts,
            default: s.default,
            origin,
            routes,
        });
    }
    if sites.is_empty() {
        errs.push(loc.whole("site", "no [[site]] configured: nothing to serve"));
    }

    if errs.is_empty() {
        Ok(Config {
            path: loc.path.to_path_buf(),
            server,
            log,
            transform,
            cache,
            metrics,
            tracing,
            sites,
        })
    } else {
        Err(errs)
    }
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

fn server(
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
        let (cert, key) = (loc.resolve(&t.cert), loc.resolve(&t.key));
        for (key, path) in [("server.tls.cert", &cert), ("server.tls.key", &key)] {
            if !path.is_file() {
                errs.push(loc.at(
                    span.clone(),
                    key,
                    format!("file {} does not exist or is not readable", path.display()),
                ));
            }
        }
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
        (Some(root), true) => {
            let dir = loc.resolve(root.get_ref());
            if !dir.is_dir() {
                errs.push(loc.at(
                    root.span(),
                    "site.origin.root",
                    format!("{} is not a directory", dir.display()),
                ));
            }
            return Origin::Root(dir);
        }
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
        match resolve_server(s.get_ref(), loc.resolve_names) {
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

/// `HOST:PORT` → address; `resolve` = false looks nothing up (see [`super::parse_offline`]).
fn resolve_server(text: &str, resolve: bool) -> Result<ServerAddr, String> {
    let bad = || {
        format!(
            "invalid server {text:?}: expected HOST:PORT, e.g. \"10.0.0.5:80\" or \"images.internal:8080\""
        )
    };
    if text.contains("://") || text.contains('/') {
        return Err(bad());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
    if host.is_empty() {
        return Err(bad());
    }
    if !resolve && text.parse::<SocketAddr>().is_err() {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(ServerAddr {
            written: text.to_string(),
            host,
            addr: SocketAddr::from(([0, 0, 0, 0], port)),
        });
    }
    let addr = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve server {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("server {text:?} resolved to no address"))?;
    Ok(ServerAddr {
        written: text.to_string(),
        host,
        addr,
    })
}

fn routes(
    list: &[toml::Spanned<schema::RouteSection>],
    local_root: bool,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    let mut prefixes = HashSet::new();
    for r in list {
        let span = r.span();
        let r = r.get_ref();
        let prefix = r.prefix.get_ref();
        if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ']) {
            errs.push(loc.at(
                r.prefix.span(),
                "site.route.prefix",
                format!("{prefix:?} must be a path starting with '/'"),
            ));
        }
        if !prefixes.insert(prefix.clone()) {
            errs.push(loc.at(
                r.prefix.span(),
                "site.route.prefix",
                format!("prefix {prefix:?} is configured twice in this site"),
            ));
        }
        let rate_limit = r.rate_limit.as_ref().and_then(|rl| match rate(&rl.rate) {
            Ok(per_second) => Some(RateLimit {
                per_second,
                burst: rl
                    .burst
                    .unwrap_or_else(|| per_second.ceil().max(1.0) as u32),
            }),
            Err(m) => {
                errs.push(loc.at(span.clone(), "site.route.rate_limit.rate", m));
                None
            }
        });
        let kind = match r.kind {
            RouteKindName::Proxy => {
                for key in imgproxy_keys_set(r) {
                    errs.push(loc.at(
                        span.clone(),
                        &format!("site.route.{key}"),
                        "applies only to routes with kind = \"imgproxy\"",
                    ));
                }
                RouteKind::Proxy
            }
            RouteKindName::Imgproxy => RouteKind::Imgproxy(Box::new(imgproxy_route(
                r,
                local_root,
                span.clone(),
                loc,
                errs,
            ))),
        };
        let cache = r
            .cache
            .unwrap_or(matches!(kind, RouteKind::Imgproxy(_)))
            .then(|| {
                let d = |v: Option<super::units::HumanDuration>, default: u64| {
                    v.map_or(Duration::from_secs(default), |h| h.0)
                };
                CachePolicy {
                    default_ttl: d(r.cache_ttl, 3600),
                    min_ttl: d(r.cache_min_ttl, 0),
                    max_ttl: d(r.cache_max_ttl, 365 * 86_400),
                    stale_while_revalidate: d(r.stale_while_revalidate, 0),
                    stale_if_error: d(r.stale_if_error, 3600),
                }
            });
        if let Some(c) = &cache
            && c.min_ttl > c.max_ttl
        {
            errs.push(loc.at(
                span.clone(),
                "site.route.cache_min_ttl",
                "is larger than cache_max_ttl",
            ));
        }
        let auth_tokens = r.auth_token.clone().unwrap_or_default();
        if auth_tokens.iter().any(|t| t.len() < 16 || !t.is_ascii()) {
            errs.push(loc.at(
                span.clone(),
                "site.route.auth_token",
                "tokens must be at least 16 ASCII characters",
            ));
        }
        out.push(Route {
            prefix: prefix.clone(),
            kind,
            rate_limit,
            cache,
            auth_tokens,
        });
    }
    if out.is_empty() {
        out.push(Route {
            prefix: "/".into(),
            kind: RouteKind::Proxy,
            rate_limit: None,
            cache: None,
            auth_tokens: Vec::new(),
        });
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    out
}

fn imgproxy_keys_set(r: &schema::RouteSection) -> Vec<&'static str> {
    let mut set = Vec::new();
    let mut check = |present: bool, name: &'static str| {
        if present {
            set.push(name)
        }
    };
    check(r.key.is_some(), "key");
    check(r.key_file.is_some(), "key_file");
    check(r.salt.is_some(), "salt");
    check(r.salt_file.is_some(), "salt_file");
    check(r.signature_size.is_some(), "signature_size");
    check(r.trusted_signatures.is_some(), "trusted_signatures");
    check(r.allow_unsigned.is_some(), "allow_unsigned");
    check(r.allowed_sources.is_some(), "allowed_sources");
    check(r.auto_webp.is_some(), "auto_webp");
    check(r.auto_avif.is_some(), "auto_avif");
    check(r.enforce_webp.is_some(), "enforce_webp");
    check(r.enforce_avif.is_some(), "enforce_avif");
    check(r.client_hints.is_some(), "client_hints");
    check(r.presets.is_some(), "presets");
    check(r.only_presets.is_some(), "only_presets");
    check(r.allowed_options.is_some(), "allowed_options");
    check(r.allow_security_options.is_some(), "allow_security_options");
    check(r.watermark.is_some(), "watermark");
    check(r.quality.is_some(), "quality");
    check(r.format_quality.is_some(), "format_quality");
    check(r.allow_loopback_sources.is_some(), "allow_loopback_sources");
    check(r.allow_private_sources.is_some(), "allow_private_sources");
    check(
        r.allow_link_local_sources.is_some(),
        "allow_link_local_sources",
    );
    set
}

fn imgproxy_route(
    r: &schema::RouteSection,
    local_root: bool,
    span: std::ops::Range<usize>,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> ImageRoute {
    let errors_before = errs.len();
    let mut err = |key: &str, message: String| {
        errs.push(loc.at(span.clone(), &format!("site.route.{key}"), message))
    };
    let keys = r.key.clone().unwrap_or_default();
    let salts = r.salt.clone().unwrap_or_default();
    let mut settings = RouteSettings {
        signature_size: r.signature_size.unwrap_or(32),
        trusted_signatures: r.trusted_signatures.clone().unwrap_or_default(),
        allow_unsigned: r.allow_unsigned.unwrap_or(false),
        only_presets: r.only_presets.unwrap_or(false),
        allowed_options: r.allowed_options.clone(),
        allow_security_options: r.allow_security_options.unwrap_or(false),
        // `local:///…` sources resolve against the site's root, so only root sites allow them.
        allow_local_sources: local_root,
        auto_webp: r.auto_webp.unwrap_or(false),
        auto_avif: r.auto_avif.unwrap_or(false),
        enforce_webp: r.enforce_webp.unwrap_or(false),
        enforce_avif: r.enforce_avif.unwrap_or(false),
        enable_client_hints: r.client_hints.unwrap_or(false),
        ..RouteSettings::default()
    };
    for (name, list) in [("key", &keys), ("salt", &salts)] {
        for (i, v) in list.iter().enumerate() {
            if v.is_empty() || hex::decode(v).is_err() {
                err(name, format!("entry {} is not a hex string", i + 1));
            }
        }
    }
    if keys.len() != salts.len() {
        err(
            "key",
            format!(
                "{} keys but {} salts: give one salt per key",
                keys.len(),
                salts.len()
            ),
        );
    } else if let Ok(pairs) = hex_key_pairs(&keys, &salts) {
        settings.key_pairs = pairs;
    }
    if keys.is_empty() && !settings.allow_unsigned {
        err(
            "key",
            "an imgproxy route needs key and salt (hex), or allow_unsigned = true".into(),
        );
    }
    if !(1..=32).contains(&settings.signature_size) {
        err(
            "signature_size",
            format!(
                "{} is out of range: expected 1 to 32 bytes",
                settings.signature_size
            ),
        );
    }
    for src in r.allowed_sources.iter().flatten() {
        match SourcePattern::new(src) {
            Ok(p) => settings.allowed_sources.push(p),
            Err(_) if !src.ends_with('/') => err(
                "allowed_sources",
                format!("{src:?} must end with '/' (otherwise \"{src}@evil.example\" would match)"),
            ),
            Err(e) => err("allowed_sources", e.to_string()),
        }
    }
    if let Some(q) = r.quality {
        settings.quality = q;
    }
    for (name, q) in r.format_quality.iter().flatten() {
        match imgforge_imgproxy::Format::from_name(name) {
            Some(f) => {
                settings.format_quality.insert(f, *q);
            }
            None => err("format_quality", format!("unknown format {name:?}")),
        }
    }
    let watermark = r.watermark.as_ref().and_then(|p| {
        let path = loc.resolve(p);
        match std::fs::read(&path) {
            Ok(b) if !b.is_empty() => Some(std::sync::Arc::new(bytes::Bytes::from(b))),
            Ok(_) => {
                err("watermark", format!("{} is empty", path.display()));
                None
            }
            Err(e) => {
                err("watermark", format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    });
    let source_policy = crate::net::AddressPolicy {
        allow_loopback: r.allow_loopback_sources.unwrap_or(false),
        allow_private: r.allow_private_sources.unwrap_or(false),
        allow_link_local: r.allow_link_local_sources.unwrap_or(false),
    };
    match Presets::parse(&r.presets.clone().unwrap_or_default()) {
        Ok(p) => settings.presets = p,
        Err(e) => err("presets", e.to_string()),
    }
    // Remaining cross-field rules (security options in presets, allowed option names).
    if errs.len() == errors_before
        && let Err(e) = settings.validate()
    {
        errs.push(loc.at(span.clone(), "site.route", e.to_string()));
    }
    ImageRoute {
        settings,
        watermark,
        source_policy,
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

/// Parses `"10/s"`, `"600/m"`, `"1000/h"` into requests per second.
pub fn rate(text: &str) -> Result<f64, String> {
    let bad = || format!("invalid rate {text:?}: expected N/s, N/m or N/h, e.g. \"10/s\"");
    let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(bad()),
    };
    if !(n > 0.0 && n.is_finite()) {
        return Err(bad());
    }
    Ok(n / per)
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
    fn rates() {
        assert_eq!(rate("10/s"), Ok(10.0));
        assert_eq!(rate("60/m"), Ok(1.0));
        assert!(rate("10").is_err());
        assert!(rate("0/s").is_err());
        assert!(rate("x/s").is_err());
        assert!(rate("5/d").is_err());
    }

    #[test]
    fn servers() {
        let s = resolve_server("127.0.0.1:8080", true).expect("valid");
        assert_eq!(s.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(s.host, "127.0.0.1");
        assert!(resolve_server("localhost:80", true).is_ok());
        for bad in ["127.0.0.1", "http://a:80", "a:99999", ":80", "a:80/x"] {
            assert!(resolve_server(bad, true).is_err(), "{bad}");
            assert!(resolve_server(bad, false).is_err(), "offline {bad}");
        }
        // Offline: names are not looked up (one that could never resolve passes), literals are kept.
        let s = resolve_server("no-such-host.invalid:8080", false).expect("offline");
        assert_eq!(s.addr, "0.0.0.0:8080".parse().expect("addr"));
        let s = resolve_server("[::1]:81", false).expect("literal");
        assert_eq!(s.addr, "[::1]:81".parse().expect("addr"));
    }
}
