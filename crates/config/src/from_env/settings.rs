//! The table of the environment mode: every setting, its names, the override of the same key,
//! and what imgproxy settings are known to be covered or safely ignored.

/// One setting of the environment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub(super) id: Id,
    /// Its names: `IMGFORGE_` first, then imgproxy's (if it has the setting).
    pub names: &'static [&'static str],
    /// The `IMGFORGE_<SECTION>_<KEY>` override of the same key (valid with a file too).
    pub override_name: Option<&'static str>,
    /// The config key it sets, for the docs and for error messages.
    pub key: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Id {
    Bind,
    PrometheusBind,
    Key,
    Salt,
    SignatureSize,
    TrustedSignatures,
    AllowUnsigned,
    Secret,
    AllowedSources,
    LocalRoot,
    BaseUrl,
    PathPrefix,
    MaxSrcResolution,
    MaxSrcFileSize,
    MaxAnimationFrames,
    MaxAnimationFrameResolution,
    MaxResultDimension,
    AllowedMimeTypes,
    Workers,
    Timeout,
    Ttl,
    Quality,
    FormatQuality,
    WebpDetection,
    AvifDetection,
    EnforceWebp,
    EnforceAvif,
    ClientHints,
    Presets,
    OnlyPresets,
    AllowSecurityOptions,
    AllowLoopback,
    AllowPrivate,
    AllowLinkLocal,
    PrometheusNamespace,
    UseEtag,
    CacheType,
    RateLimitPerMinute,
    MaxClients,
    MaxRedirects,
    LogLevel,
}

const fn s(
    id: Id,
    names: &'static [&'static str],
    override_name: Option<&'static str>,
    key: &'static str,
) -> Setting {
    Setting {
        id,
        names,
        override_name,
        key,
    }
}

/// Every setting of the environment mode (one a line: the table docs/configuration.md shows).
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    s(Id::Bind, &["IMGFORGE_BIND", "IMGPROXY_BIND"], Some("IMGFORGE_SERVER_LISTEN"), "server.listen"),
    s(Id::PrometheusBind, &["IMGFORGE_PROMETHEUS_BIND", "IMGPROXY_PROMETHEUS_BIND"], Some("IMGFORGE_SERVER_ADMIN_LISTEN"), "server.admin_listen"),
    s(Id::Key, &["IMGFORGE_KEY", "IMGPROXY_KEY"], None, "site.route.key"),
    s(Id::Salt, &["IMGFORGE_SALT", "IMGPROXY_SALT"], None, "site.route.salt"),
    s(Id::SignatureSize, &["IMGFORGE_SIGNATURE_SIZE", "IMGPROXY_SIGNATURE_SIZE"], None, "site.route.signature_size"),
    s(Id::TrustedSignatures, &["IMGFORGE_TRUSTED_SIGNATURES", "IMGPROXY_TRUSTED_SIGNATURES"], None, "site.route.trusted_signatures"),
    s(Id::AllowUnsigned, &["IMGFORGE_ALLOW_UNSIGNED"], None, "site.route.allow_unsigned"),
    s(Id::Secret, &["IMGFORGE_SECRET", "IMGPROXY_SECRET"], None, "site.route.auth_token"),
    s(Id::AllowedSources, &["IMGFORGE_ALLOWED_SOURCES", "IMGPROXY_ALLOWED_SOURCES"], None, "site.route.allowed_sources"),
    s(Id::LocalRoot, &["IMGFORGE_LOCAL_FILESYSTEM_ROOT", "IMGPROXY_LOCAL_FILESYSTEM_ROOT"], None, "site.origin.root"),
    s(Id::BaseUrl, &["IMGFORGE_BASE_URL", "IMGPROXY_BASE_URL"], None, "site.origin.servers"),
    s(Id::PathPrefix, &["IMGFORGE_PATH_PREFIX", "IMGPROXY_PATH_PREFIX"], None, "site.route.prefix"),
    s(Id::MaxSrcResolution, &["IMGFORGE_MAX_SRC_RESOLUTION", "IMGPROXY_MAX_SRC_RESOLUTION"], Some("IMGFORGE_TRANSFORM_MAX_SRC_RESOLUTION"), "transform.max_src_resolution"),
    s(Id::MaxSrcFileSize, &["IMGFORGE_MAX_SRC_FILE_SIZE", "IMGPROXY_MAX_SRC_FILE_SIZE"], Some("IMGFORGE_TRANSFORM_MAX_SRC_FILE_SIZE"), "transform.max_src_file_size"),
    s(Id::MaxAnimationFrames, &["IMGFORGE_MAX_ANIMATION_FRAMES", "IMGPROXY_MAX_ANIMATION_FRAMES"], None, "transform.max_animation_frames"),
    s(Id::MaxAnimationFrameResolution, &["IMGFORGE_MAX_ANIMATION_FRAME_RESOLUTION", "IMGPROXY_MAX_ANIMATION_FRAME_RESOLUTION"], None, "transform.max_animation_frame_resolution"),
    s(Id::MaxResultDimension, &["IMGFORGE_MAX_RESULT_DIMENSION", "IMGPROXY_MAX_RESULT_DIMENSION"], None, "transform.max_result_dimension"),
    s(Id::AllowedMimeTypes, &["IMGFORGE_ALLOWED_MIME_TYPES"], None, "site.route.allowed_mime_types"),
    s(Id::Workers, &["IMGFORGE_WORKERS", "IMGPROXY_WORKERS", "IMGPROXY_CONCURRENCY"], Some("IMGFORGE_TRANSFORM_WORKERS"), "transform.workers"),
    s(Id::Timeout, &["IMGFORGE_TIMEOUT", "IMGPROXY_TIMEOUT"], Some("IMGFORGE_TRANSFORM_TIMEOUT"), "transform.timeout"),
    s(Id::Ttl, &["IMGFORGE_TTL", "IMGPROXY_TTL"], None, "site.route.cache_ttl"),
    s(Id::Quality, &["IMGFORGE_QUALITY", "IMGPROXY_QUALITY"], None, "site.route.quality"),
    s(Id::FormatQuality, &["IMGFORGE_FORMAT_QUALITY", "IMGPROXY_FORMAT_QUALITY"], None, "site.route.format_quality"),
    s(Id::WebpDetection, &["IMGFORGE_ENABLE_WEBP_DETECTION", "IMGPROXY_ENABLE_WEBP_DETECTION"], None, "site.route.auto_webp"),
    s(Id::AvifDetection, &["IMGFORGE_ENABLE_AVIF_DETECTION", "IMGPROXY_ENABLE_AVIF_DETECTION"], None, "site.route.auto_avif"),
    s(Id::EnforceWebp, &["IMGFORGE_ENFORCE_WEBP", "IMGPROXY_ENFORCE_WEBP"], None, "site.route.enforce_webp"),
    s(Id::EnforceAvif, &["IMGFORGE_ENFORCE_AVIF", "IMGPROXY_ENFORCE_AVIF"], None, "site.route.enforce_avif"),
    s(Id::ClientHints, &["IMGFORGE_ENABLE_CLIENT_HINTS", "IMGPROXY_ENABLE_CLIENT_HINTS"], None, "site.route.client_hints"),
    s(Id::Presets, &["IMGFORGE_PRESETS", "IMGPROXY_PRESETS"], None, "site.route.presets"),
    s(Id::OnlyPresets, &["IMGFORGE_ONLY_PRESETS", "IMGPROXY_ONLY_PRESETS"], None, "site.route.only_presets"),
    s(Id::AllowSecurityOptions, &["IMGFORGE_ALLOW_SECURITY_OPTIONS", "IMGPROXY_ALLOW_SECURITY_OPTIONS"], None, "site.route.allow_security_options"),
    s(Id::AllowLoopback, &["IMGFORGE_ALLOW_LOOPBACK_SOURCE_ADDRESSES", "IMGPROXY_ALLOW_LOOPBACK_SOURCE_ADDRESSES"], None, "site.route.allow_loopback_sources"),
    s(Id::AllowPrivate, &["IMGFORGE_ALLOW_PRIVATE_SOURCE_ADDRESSES", "IMGPROXY_ALLOW_PRIVATE_SOURCE_ADDRESSES"], None, "site.route.allow_private_sources"),
    s(Id::AllowLinkLocal, &["IMGFORGE_ALLOW_LINK_LOCAL_SOURCE_ADDRESSES", "IMGPROXY_ALLOW_LINK_LOCAL_SOURCE_ADDRESSES"], None, "site.route.allow_link_local_sources"),
    s(Id::PrometheusNamespace, &["IMGFORGE_PROMETHEUS_NAMESPACE", "IMGPROXY_PROMETHEUS_NAMESPACE"], Some("IMGFORGE_METRICS_NAMESPACE"), "metrics.namespace"),
    s(Id::UseEtag, &["IMGFORGE_USE_ETAG", "IMGPROXY_USE_ETAG"], None, "(always on)"),
    s(Id::CacheType, &["IMGFORGE_CACHE_TYPE"], None, "cache.memory_size, cache.disk_path"),
    s(Id::RateLimitPerMinute, &["IMGFORGE_RATE_LIMIT_PER_MINUTE"], None, "server.global_rate_limit"),
    s(Id::MaxClients, &["IMGFORGE_MAX_CLIENTS", "IMGPROXY_MAX_CLIENTS"], Some("IMGFORGE_SERVER_MAX_CONNECTIONS"), "server.max_connections"),
    s(Id::MaxRedirects, &["IMGFORGE_MAX_REDIRECTS", "IMGPROXY_MAX_REDIRECTS"], None, "(checked only: 5 redirects at most)"),
    s(Id::LogLevel, &["IMGPROXY_LOG_LEVEL"], Some("IMGFORGE_LOG_LEVEL"), "log.level"),
];

/// Redirects a source download follows at most (the image service's fixed bound).
pub(super) const MAX_REDIRECTS: u64 = 5;

/// Source types the image engine decodes (MIME names as `IMGFORGE_ALLOWED_MIME_TYPES` has them).
pub const DECODED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/avif",
    "image/heic",
    "image/tiff",
];

/// imgproxy settings known and deliberately ignored (their effect is covered, or ignoring them
/// is the safer side), with the reason printed.
pub(super) const IGNORED: &[(&str, &str)] = &[
    (
        "IMGPROXY_DOWNLOAD_TIMEOUT",
        "the source download is bounded by IMGPROXY_TIMEOUT (transform.timeout)",
    ),
    (
        "IMGPROXY_SANITIZE_SVG",
        "imgforge never decodes SVG sources",
    ),
    (
        "IMGPROXY_MAX_SVG_CHECK_BYTES",
        "imgforge never decodes SVG sources",
    ),
    (
        "IMGPROXY_IGNORE_SSL_VERIFICATION",
        "imgforge always verifies source certificates",
    ),
    (
        "IMGPROXY_DEVELOPMENT_ERRORS_MODE",
        "imgforge never puts internal errors in responses",
    ),
    (
        "IMGPROXY_ENABLE_DEBUG_HEADERS",
        "imgforge sends no debug headers",
    ),
    (
        "IMGPROXY_LOG_FORMAT",
        "use IMGFORGE_LOG_FORMAT (json or pretty)",
    ),
];

/// Names read elsewhere (the log filter, the config file path, the override mechanism): never
/// "unknown".
pub(super) const OTHER_KNOWN: &[&str] = &[
    "IMGFORGE_LOG",
    "IMGFORGE_CONFIG",
    "IMGFORGE_CACHE_DISK_PATH",
];

/// Parts of a setting name that mark a credential, a limit or an allow-list: an unknown
/// variable with one of them is refused rather than ignored.
pub(super) const SECURITY_WORDS: &[&str] = &[
    "KEY",
    "SALT",
    "SECRET",
    "SIGNATURE",
    "TOKEN",
    "PASSWORD",
    "ENCRYPT",
    "ALLOWED",
    "TRUSTED",
    "AUTH",
    "MAX_",
    "LIMIT",
];
