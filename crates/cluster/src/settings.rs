//! What a coordinator is configured with: the runtime model of the `[cluster]` section.
//!
//! Plain data with defaults and a pure [`ClusterSettings::validate`]; reading the config file
//! (and `*_file` secrets) is the gateway's job. The names follow the config contract:
//! `redis` / `redis_cluster` → [`Endpoint`], `node_id`, `timeout`, `on_error` → [`OnError`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where Redis is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// One Redis server (or a proxy in front of several): `redis://[:password@]host[:port][/db]`
    /// or `rediss://…` for TLS (`redis = "…"` in the config).
    Standalone(String),
    /// Seed nodes of a Redis Cluster as `host:port` (a `redis://` or `rediss://` URL is accepted
    /// too); the rest of the cluster is discovered from them (`redis_cluster = [ … ]`).
    Cluster(Vec<String>),
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password that a URL may carry.
        match self {
            Endpoint::Standalone(url) => {
                f.debug_tuple("Standalone").field(&redact_url(url)).finish()
            }
            Endpoint::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl fmt::Display for Endpoint {
    /// The endpoint as `/status` may show it: passwords replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Standalone(url) => f.write_str(&redact_url(url)),
            Endpoint::Cluster(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
                write!(f, "cluster[{}]", nodes.join(", "))
            }
        }
    }
}

/// What a request gets when Redis cannot decide its rate limit (error, timeout, open breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The node's own in-memory limiter decides (each node then admits up to the full quota).
    #[default]
    Local,
    /// The request is admitted (fail open).
    Allow,
    /// The request is refused with 429 (fail closed).
    Deny,
}

impl OnError {
    /// The config spelling: `local`, `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Local => "local",
            OnError::Allow => "allow",
            OnError::Deny => "deny",
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnError {
    type Err = String;

    /// Parses the config spelling (`local`, `allow`, `deny`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(OnError::Local),
            "allow" => Ok(OnError::Allow),
            "deny" => Ok(OnError::Deny),
            other => Err(format!(
                "on_error must be \"local\", \"allow\" or \"deny\", not {other:?}"
            )),
        }
    }
}

/// The circuit breaker in front of the request-path calls (rate limits, fill locks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls (errors or timeouts) that open the breaker. Default 3.
    pub failures: u32,
    /// How long an open breaker skips Redis before one probe call may try again. Default 2 s.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 3,
            open_for: Duration::from_secs(2),
        }
    }
}

/// Everything a [`crate::Coordinator`] needs. Build with [`ClusterSettings::new`] and adjust the
/// public fields; check with [`ClusterSettings::validate`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Where Redis is.
    pub endpoint: Endpoint,
    /// Password (e.g. read from `password_file`); overrides one written in the URL(s).
    pub password: Option<String>,
    /// This node's name: owner of its fill locks, origin of its purges. Default: the host name
    /// ([`default_node_id`]).
    pub node_id: String,
    /// Budget of each request-path call (rate limit, lock): past it the call counts as failed and
    /// the caller falls back. Default 20 ms.
    pub timeout: Duration,
    /// What a rate-limited request gets when Redis cannot decide. Default [`OnError::Local`].
    pub on_error: OnError,
    /// Circuit breaker of the request-path calls.
    pub breaker: BreakerSettings,
    /// Budget of background calls (publishing a purge, the purge listener's reads). Default 1 s.
    pub background_timeout: Duration,
    /// How often the purge listener checks the purge sequence even when no Pub/Sub message came
    /// (a lost message or a silently dead subscription is noticed within this). Default 1 s.
    pub purge_poll: Duration,
    /// Purge events kept in Redis for nodes that were away (older ones are trimmed; a node that
    /// missed more than this clears its cache instead). Default 10 000.
    pub purge_log_len: u32,
    /// Prefix of every Redis key and channel, so that several fleets can share one Redis.
    /// Default `imgforge`.
    pub key_prefix: String,
    /// Most keys remembered by the local deny cache. Default 100 000.
    pub deny_cache_keys: usize,
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("endpoint", &self.endpoint)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("node_id", &self.node_id)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("breaker", &self.breaker)
            .field("background_timeout", &self.background_timeout)
            .field("purge_poll", &self.purge_poll)
            .field("purge_log_len", &self.purge_log_len)
            .field("key_prefix", &self.key_prefix)
            .field("deny_cache_keys", &self.deny_cache_keys)
            .finish()
    }
}

/// Default of [`ClusterSettings::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);

impl ClusterSettings {
    /// Settings with every default, for `endpoint` and `node_id`.
    pub fn new(endpoint: Endpoint, node_id: impl Into<String>) -> Self {
        Self {
            endpoint,
            password: None,
            node_id: node_id.into(),
            timeout: DEFAULT_TIMEOUT,
            on_error: OnError::default(),
            breaker: BreakerSettings::default(),
            background_timeout: Duration::from_secs(1),
            purge_poll: Duration::from_secs(1),
            purge_log_len: 10_000,
            key_prefix: "imgforge".into(),
            deny_cache_keys: 100_000,
        }
    }

    /// Checks every field without touching the network. On failure, every problem found, each
    /// naming its field (the config key where there is one) so that the gateway can point at
    /// the line.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, message: String| {
            problems.push(Problem { field, message });
        };
        match &self.endpoint {
            Endpoint::Standalone(url) => {
                if let Err(e) = check_url(url, true) {
                    bad("redis", e);
                }
            }
            Endpoint::Cluster(nodes) => {
                if nodes.is_empty() {
                    bad(
                        "redis_cluster",
                        "the cluster node list is empty: give at least one \"host:port\"".into(),
                    );
                }
                for (i, node) in nodes.iter().enumerate() {
                    let checked = if node.contains("://") {
                        check_url(node, false)
                    } else {
                        check_host_port(node)
                    };
                    if let Err(e) = checked {
                        bad("redis_cluster", format!("entry {}: {e}", i + 1));
                    }
                    if nodes[..i].contains(node) {
                        bad(
                            "redis_cluster",
                            format!("entry {}: {node:?} is listed twice", i + 1),
                        );
                    }
                }
            }
        }
        if let Some(p) = &self.password
            && p.is_empty()
        {
            bad(
                "password",
                "the password is empty (omit it for no password)".into(),
            );
        }
        if self.node_id.is_empty() {
            bad("node_id", "node_id is empty".into());
        } else if self.node_id.len() > 128 {
            bad("node_id", "node_id is longer than 128 bytes".into());
        } else if self
            .node_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            bad(
                "node_id",
                format!(
                    "node_id {:?} contains whitespace or control characters",
                    self.node_id
                ),
            );
        }
        if self.timeout.is_zero() {
            bad("timeout", "timeout must be greater than zero".into());
        } else if self.timeout > Duration::from_secs(10) {
            bad(
                "timeout",
                format!(
                    "timeout {:?} is longer than 10s: every rate-limited request may wait that long",
                    self.timeout
                ),
            );
        }
        if self.breaker.failures == 0 {
            bad("breaker.failures", "must be at least 1".into());
        }
        if self.breaker.open_for.is_zero() {
            bad("breaker.open_for", "must be greater than zero".into());
        }
        if self.background_timeout.is_zero() {
            bad("background_timeout", "must be greater than zero".into());
        }
        if self.purge_poll.is_zero() {
            bad("purge_poll", "must be greater than zero".into());
        }
        if self.purge_log_len == 0 {
            bad("purge_log_len", "must be at least 1".into());
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}', ' ']) {
            bad(
                "key_prefix",
                format!(
                    "key_prefix {:?} must be non-empty, without braces or spaces",
                    self.key_prefix
                ),
            );
        }
        if self.deny_cache_keys == 0 {
            bad("deny_cache_keys", "must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidSettings { problems })
        }
    }
}

/// One problem found by [`ClusterSettings::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field (config key) at fault.
    pub field: &'static str,
    /// What is wrong, in words for the operator.
    pub message: String,
}

/// Every problem found by [`ClusterSettings::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSettings {
    /// In field order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for InvalidSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "cluster.{}: {}", p.field, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidSettings {}

/// The host name, as the default `node_id` (`HOSTNAME`, else the kernel's host name, else
/// `imgforge`).
pub fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "imgforge".into())
}

/// Checks a `redis://` / `rediss://` URL; `allow_db` is false for Cluster nodes (no databases).
fn check_url(url: &str, allow_db: bool) -> Result<(), String> {
    let shown = redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{shown:?} is not a URL: write redis://host:port/db or rediss://host:port/db"
        ));
    };
    match scheme {
        "redis" => {}
        "rediss" => {
            if !cfg!(feature = "tls") {
                return Err(format!(
                    "{shown:?}: rediss:// needs the crate's `tls` feature"
                ));
            }
        }
        other => {
            return Err(format!(
                "{shown:?}: the scheme must be redis:// or rediss://, not {other}://"
            ));
        }
    }
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    check_host_port_optional(host_port).map_err(|e| format!("{shown:?}: {e}"))?;
    if !path.is_empty() {
        if !allow_db {
            return Err(format!(
                "{shown:?}: a Cluster has no databases, remove the /{path}"
            ));
        }
        if path.parse::<u16>().is_err() {
            return Err(format!(
                "{shown:?}: the database must be a number (/0, /1, …), not /{path}"
            ));
        }
    }
    // The client's own parser has the last word (percent-encoding, IPv6 brackets, …).
    redis::Client::open(url).map_err(|e| format!("{shown:?}: {e}"))?;
    Ok(())
}

/// `host:port` with a port that must be present.
fn check_host_port(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some((host, Some(port))) if !host.is_empty() => check_port(s, port),
        _ => Err(format!("{s:?} is not \"host:port\"")),
    }
}

/// `host[:port]`.
fn check_host_port_optional(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some((host, port)) if !host.is_empty() => port.map_or(Ok(()), |p| check_port(s, p)),
        _ => Err(format!("{s:?} is not \"host[:port]\"")),
    }
}

fn check_port(s: &str, port: &str) -> Result<(), String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{s:?}: the port must be 1-65535, not {port:?}")),
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// The URL with any password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standalone(url: &str) -> ClusterSettings {
        ClusterSettings::new(Endpoint::Standalone(url.into()), "edge-1")
    }

    fn fields(r: Result<(), InvalidSettings>) -> Vec<&'static str> {
        r.err()
            .map(|e| e.problems.iter().map(|p| p.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_validate() {
        let s = standalone("redis://127.0.0.1:6379/0");
        assert_eq!(s.timeout, Duration::from_millis(20));
        assert_eq!(s.on_error, OnError::Local);
        assert!(s.validate().is_ok());
        assert!(standalone("redis://localhost").validate().is_ok());
        let tls = standalone("rediss://:secret@cache.internal:6380/2").validate();
        if cfg!(feature = "tls") {
            assert!(tls.is_ok(), "{tls:?}");
        } else {
            assert!(tls.is_err_and(|e| e.to_string().contains("`tls` feature")));
        }
        assert!(standalone("redis://[::1]:6379").validate().is_ok());
        let c = ClusterSettings::new(
            Endpoint::Cluster(vec![
                "127.0.0.1:7000".into(),
                "redis://10.0.0.2:7001".into(),
            ]),
            "edge-1",
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, words) in [
            ("127.0.0.1:6379", "not a URL"),
            ("http://127.0.0.1:6379", "redis:// or rediss://"),
            ("redis://", "no host"),
            ("redis://host:0", "port must be"),
            ("redis://host:99999", "port must be"),
            ("redis://host:6379/abc", "database must be a number"),
        ] {
            let err = standalone(url).validate().expect_err(url);
            assert_eq!(err.problems.len(), 1, "{url}: {err}");
            assert_eq!(err.problems[0].field, "redis");
            assert!(err.to_string().contains(words), "{url}: {err}");
        }
    }

    #[test]
    fn cluster_lists() {
        let c = |nodes: &[&str]| {
            ClusterSettings::new(
                Endpoint::Cluster(nodes.iter().map(|n| n.to_string()).collect()),
                "n",
            )
        };
        let e = c(&[]).validate().expect_err("empty");
        assert!(e.to_string().contains("empty"), "{e}");
        let e = c(&["a:1", "b"]).validate().expect_err("no port");
        assert!(e.to_string().contains("entry 2"), "{e}");
        let e = c(&["a:1", "a:1"]).validate().expect_err("twice");
        assert!(e.to_string().contains("twice"), "{e}");
        let e = c(&["redis://a:1/3"]).validate().expect_err("db");
        assert!(e.to_string().contains("no databases"), "{e}");
    }

    #[test]
    fn other_fields() {
        let mut s = standalone("redis://h:1");
        s.timeout = Duration::ZERO;
        s.node_id = "edge 1".into();
        s.password = Some(String::new());
        s.breaker.failures = 0;
        assert_eq!(
            fields(s.validate()),
            ["password", "node_id", "timeout", "breaker.failures"]
        );
        let mut s = standalone("redis://h:1");
        s.node_id.clear();
        s.timeout = Duration::from_secs(60);
        s.key_prefix = "a{b}".into();
        assert_eq!(fields(s.validate()), ["node_id", "timeout", "key_prefix"]);
    }

    #[test]
    fn on_error_spellings() {
        for p in [OnError::Local, OnError::Allow, OnError::Deny] {
            assert_eq!(p.as_str().parse::<OnError>(), Ok(p));
        }
        assert!("fail".parse::<OnError>().is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        let s = standalone("redis://user:hunter2@h:1/0");
        let shown = format!("{s:?} {}", s.endpoint);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://user:***@h:1/0"), "{shown}");
        let mut s = standalone("redis://h:1");
        s.password = Some("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
