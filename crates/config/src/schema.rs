//! What users write: the TOML schema, deserialized as-is with unknown keys rejected.
//!
//! Nothing here is used at run time directly: [`super::model`] validates it into the runtime
//! model. Defaults live here, next to the key they belong to. It serializes back to TOML too
//! (`imgforge --print-config`): unset optional keys are left out, everything else is written
//! with its effective value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::units::{ByteSize, HumanDuration};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub transform: TransformSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub tracing: TracingSection,
    /// Absent: a single node.
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    #[serde(default)]
    pub site: Vec<Spanned<SiteSection>>,
}

/// `[cluster]`: fleet coordination over Redis (docs/cluster.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// One Redis server: `redis://HOST:PORT[/DB]` or `rediss://…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Spanned<String>>,
    /// A Redis Cluster: `["HOST:PORT", …]` (any of its masters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cluster: Option<Vec<Spanned<String>>>,
    /// Redis password (or `password_file`), when the URL carries none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<std::path::PathBuf>,
    /// This node's name (default: the host name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Budget of one Redis call.
    #[serde(default = "default_cluster_timeout")]
    pub timeout: HumanDuration,
    /// `local` | `allow` | `deny`: what a request does when Redis cannot decide.
    #[serde(default = "default_on_error")]
    pub on_error: String,
}

fn default_cluster_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(20))
}

fn default_on_error() -> String {
    "local".into()
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default = "default_listen")]
    pub listen: Vec<Spanned<String>>,
    /// Admin listener; an empty string disables it.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: Spanned<String>,
    #[serde(default = "default_threads")]
    pub threads: usize,
    #[serde(default = "default_grace")]
    pub grace_period: HumanDuration,
    /// Where Pingora keeps the upgrade socket (zero-downtime binary upgrade).
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
    #[serde(default = "default_pid_file")]
    pub pid_file: String,
    pub admin_token: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    pub tls: Option<Spanned<TlsSection>>,
    /// Peers whose `X-Forwarded-For` is believed (CIDR blocks).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Clients never rate limited (CIDR blocks).
    #[serde(default)]
    pub rate_limit_exempt: Vec<String>,
    /// A cap on all requests of the process together.
    pub global_rate_limit: Option<RateLimitSection>,
    /// Concurrent requests one client address may have in flight (0 = no cap).
    #[serde(default)]
    pub max_requests_per_client: u32,
    /// Simultaneous downstream connections on the public listeners (0 = no cap).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Longest request target (path and query) accepted; longer → 414.
    #[serde(default = "default_max_url_length")]
    pub max_url_length: ByteSize,
    /// Largest request header block (all fields together) accepted; larger → 431.
    #[serde(default = "default_max_header_size")]
    pub max_header_size: ByteSize,
    /// `/healthz` (liveness) and `/readyz` (readiness) answered on the public listeners too,
    /// before routing: those two paths never reach a site.
    #[serde(default)]
    pub public_health: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            threads: default_threads(),
            grace_period: default_grace(),
            upgrade_sock: default_upgrade_sock(),
            pid_file: default_pid_file(),
            admin_token: None,
            admin_token_file: None,
            tls: None,
            trusted_proxies: Vec::new(),
            rate_limit_exempt: Vec::new(),
            global_rate_limit: None,
            max_requests_per_client: 0,
            max_connections: default_max_connections(),
            max_url_length: default_max_url_length(),
            max_header_size: default_max_header_size(),
            public_health: false,
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    #[serde(default = "default_log_level")]
    pub level: String,
    /// One line per request (on by default).
    #[serde(default = "yes")]
    pub access_log: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
            access_log: true,
        }
    }
}

/// Log line encoding.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `[transform]`: the libvips worker pool and source limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSection {
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default = "default_transform_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_max_src_resolution")]
    pub max_src_resolution: f64,
    #[serde(default = "default_max_src_file_size")]
    pub max_src_file_size: ByteSize,
    /// Frames of an animation kept; 1 = first frame only (a still result).
    #[serde(default = "default_max_animation_frames")]
    pub max_animation_frames: u32,
    /// Megapixels per frame (0 = check the total against `max_src_resolution`).
    #[serde(default)]
    pub max_animation_frame_resolution: f64,
    /// Largest side of a result in pixels (0 = no limit).
    #[serde(default)]
    pub max_result_dimension: u32,
    /// AV1 encoder speed, 0 (slow, small) to 9 (fast).
    #[serde(default = "default_avif_speed")]
    pub avif_speed: u8,
    #[serde(default)]
    pub jpeg_progressive: bool,
    /// Output formats the engine may produce; each is self-tested at start-up.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
}

impl Default for TransformSection {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            queue: default_queue(),
            timeout: default_transform_timeout(),
            max_src_resolution: default_max_src_resolution(),
            max_src_file_size: default_max_src_file_size(),
            max_animation_frames: default_max_animation_frames(),
            max_animation_frame_resolution: 0.0,
            max_result_dimension: 0,
            avif_speed: default_avif_speed(),
            jpeg_progressive: false,
            formats: default_formats(),
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    #[serde(default = "default_memory_size")]
    pub memory_size: ByteSize,
    pub disk_path: Option<PathBuf>,
    #[serde(default = "default_disk_size")]
    pub disk_size: ByteSize,
    /// `X-Cache-Status` on responses of cached routes.
    #[serde(default = "yes")]
    pub status_header: bool,
    /// How long concurrent misses of one key wait for the first to fill it.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: HumanDuration,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            memory_size: default_memory_size(),
            disk_path: None,
            disk_size: default_disk_size(),
            status_header: true,
            lock_timeout: default_lock_timeout(),
        }
    }
}

/// `[metrics]`: the admin listener's `/metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Prefix of the imgproxy-compatible families, as `IMGPROXY_PROMETHEUS_NAMESPACE`
    /// (`"imgproxy"` → `imgproxy_requests_total`); empty: no prefix.
    #[serde(default)]
    pub namespace: String,
}

/// `[tracing]`: OpenTelemetry span export (a binary built with `--features otlp`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSection {
    /// Base URL of an OTLP/HTTP receiver (`/v1/traces` is appended); unset: no export.
    pub otlp_endpoint: Option<Spanned<String>>,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Share of traces exported, 0.0 to 1.0 (decided at the edge, followed by the image service).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for TracingSection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

/// `[[site]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSection {
    pub name: Spanned<String>,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub default: bool,
    /// Absent: the site serves only image routes with absolute sources (no relative source,
    /// no proxying).
    pub origin: Option<Spanned<OriginSection>>,
    #[serde(default)]
    pub route: Vec<Spanned<RouteSection>>,
}

/// `[site.origin]`: HTTP servers or a local directory.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSection {
    #[serde(default)]
    pub servers: Vec<Spanned<String>>,
    #[serde(default)]
    pub tls: bool,
    /// SNI and certificate name for TLS origins; defaults to the server's host.
    pub sni: Option<String>,
    #[serde(default = "yes")]
    pub verify_cert: bool,
    #[serde(default)]
    pub lb: LbAlgorithm,
    /// What the consistent hash is computed over.
    #[serde(default)]
    pub hash_on: HashOn,
    pub health_check: Option<HealthCheckSection>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    #[serde(default = "default_read_timeout")]
    pub read_timeout: HumanDuration,
    /// How many other servers a failed connect is retried on.
    #[serde(default = "default_retries")]
    pub retries: usize,
    /// Replaces the client's `Host` when talking to the origin.
    pub host_header: Option<String>,
    /// Extra request headers sent to the origin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    pub root: Option<Spanned<PathBuf>>,
}

impl Default for OriginSection {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            tls: false,
            sni: None,
            verify_cert: true,
            lb: LbAlgorithm::default(),
            hash_on: HashOn::default(),
            health_check: None,
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            retries: default_retries(),
            host_header: None,
            request_headers: BTreeMap::new(),
            root: None,
        }
    }
}

/// Load-balancing algorithm.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LbAlgorithm {
    #[default]
    RoundRobin,
    ConsistentHash,
}

/// Input of the consistent hash.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum HashOn {
    #[default]
    Path,
    ClientIp,
    Host,
}

/// `health_check = { path = "/healthz", interval = "5s" }`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSection {
    pub path: Option<String>,
    #[serde(default = "default_hc_interval")]
    pub interval: HumanDuration,
    #[serde(default = "default_hc_timeout")]
    pub timeout: HumanDuration,
    /// Consecutive results needed to flip a server's state.
    #[serde(default = "one")]
    pub consecutive_failures: usize,
    #[serde(default = "one")]
    pub consecutive_successes: usize,
}

/// `[[site.route]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub prefix: Spanned<String>,
    #[serde(default)]
    pub kind: RouteKindName,

    // imgproxy routes (rejected on proxy routes)
    pub key: Option<Vec<String>>,
    pub key_file: Option<PathBuf>,
    pub salt: Option<Vec<String>>,
    pub salt_file: Option<PathBuf>,
    pub signature_size: Option<usize>,
    pub trusted_signatures: Option<Vec<String>>,
    pub allow_unsigned: Option<bool>,
    pub allowed_sources: Option<Vec<String>>,
    /// Source types the route transforms (MIME names); others are refused with 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_mime_types: Option<Vec<String>>,
    /// `Content-Security-Policy` of image responses (default: imgproxy's); `""`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    pub auto_webp: Option<bool>,
    pub auto_avif: Option<bool>,
    pub enforce_webp: Option<bool>,
    pub enforce_avif: Option<bool>,
    pub client_hints: Option<bool>,
    pub presets: Option<BTreeMap<String, String>>,
    pub only_presets: Option<bool>,
    pub allowed_options: Option<Vec<String>>,
    pub allow_security_options: Option<bool>,
    /// Watermark image for `wm:` (a file, read at start-up).
    pub watermark: Option<PathBuf>,
    /// Default quality (1-100) and per-format defaults, e.g. `{ webp = 75 }`.
    pub quality: Option<u8>,
    pub format_quality: Option<BTreeMap<String, u8>>,
    /// Whether absolute sources may resolve to loopback / private / link-local addresses.
    pub allow_loopback_sources: Option<bool>,
    pub allow_private_sources: Option<bool>,
    pub allow_link_local_sources: Option<bool>,

    /// Cache this route's responses (default: on for image routes, off for proxy routes).
    pub cache: Option<bool>,
    /// Freshness when the response says nothing (no max-age, no Expires).
    pub cache_ttl: Option<HumanDuration>,
    /// Freshness bounds applied to whatever the response says.
    pub cache_min_ttl: Option<HumanDuration>,
    pub cache_max_ttl: Option<HumanDuration>,
    /// Serve stale while one request revalidates, and while the origin fails.
    pub stale_while_revalidate: Option<HumanDuration>,
    pub stale_if_error: Option<HumanDuration>,

    /// Per-client rate limit (enforced by the protection layer).
    pub rate_limit: Option<RateLimitSection>,
    /// Requests must carry `Authorization: Bearer <token>` (any of the list: rotation).
    pub auth_token: Option<Vec<String>>,
    pub auth_token_file: Option<PathBuf>,
}

impl RouteSection {
    /// A route with every optional key unset, as if only `prefix` and `kind` were written.
    pub fn new(prefix: &str, kind: RouteKindName) -> Self {
        Self {
            prefix: Spanned::new(0..0, prefix.to_string()),
            kind,
            key: None,
            key_file: None,
            salt: None,
            salt_file: None,
            signature_size: None,
            trusted_signatures: None,
            allow_unsigned: None,
            allowed_sources: None,
            allowed_mime_types: None,
            content_security_policy: None,
            auto_webp: None,
            auto_avif: None,
            enforce_webp: None,
            enforce_avif: None,
            client_hints: None,
            presets: None,
            only_presets: None,
            allowed_options: None,
            allow_security_options: None,
            watermark: None,
            quality: None,
            format_quality: None,
            allow_loopback_sources: None,
            allow_private_sources: None,
            allow_link_local_sources: None,
            cache: None,
            cache_ttl: None,
            cache_min_ttl: None,
            cache_max_ttl: None,
            stale_while_revalidate: None,
            stale_if_error: None,
            rate_limit: None,
            auth_token: None,
            auth_token_file: None,
        }
    }
}

/// Route kinds as written.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RouteKindName {
    #[default]
    Proxy,
    Imgproxy,
}

/// `rate_limit = { rate = "10/s", burst = 30 }`
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub rate: String,
    #[serde(default)]
    pub burst: Option<u32>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn default_listen() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "127.0.0.1:8080".to_string())]
}
fn default_admin_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9090".to_string())
}
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_workers() -> usize {
    default_threads()
}
/// imgproxy's `IMGPROXY_MAX_CLIENTS` default: a bound below common file-descriptor limits.
fn default_max_connections() -> u32 {
    2048
}
/// nginx's default for one request line (`large_client_header_buffers 4 8k`).
fn default_max_url_length() -> ByteSize {
    ByteSize(8 * 1024)
}
/// nginx's default for all header lines together (4 × 8k); Pingora alone would take 1 MiB.
fn default_max_header_size() -> ByteSize {
    ByteSize(32 * 1024)
}
fn default_grace() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}
fn default_upgrade_sock() -> String {
    "/tmp/imgforge_upgrade.sock".into()
}
fn default_pid_file() -> String {
    "/tmp/imgforge.pid".into()
}
fn default_log_format() -> LogFormat {
    LogFormat::Json
}
fn default_log_level() -> String {
    "info".into()
}
fn default_service_name() -> String {
    "imgforge".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}
fn default_queue() -> usize {
    64
}
fn default_transform_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_max_src_resolution() -> f64 {
    50.0
}
fn default_max_src_file_size() -> ByteSize {
    ByteSize(32 << 20)
}
fn default_max_animation_frames() -> u32 {
    100
}
fn default_avif_speed() -> u8 {
    8
}
fn default_formats() -> Vec<String> {
    ["jpeg", "png", "webp", "avif", "gif"]
        .map(String::from)
        .to_vec()
}
fn default_lock_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_memory_size() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_disk_size() -> ByteSize {
    ByteSize(10 << 30)
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(2))
}
fn default_read_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_retries() -> usize {
    1
}
fn default_hc_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}
fn default_hc_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
