//! `[[site.route]]` validated: prefixes, caching, limits, auth, and the imgproxy settings.

use std::collections::HashSet;
use std::time::Duration;

use crate::error::{ConfigError, Locator};
use crate::schema::{self, RouteKindName};
use imgforge_imgproxy::{Presets, RouteSettings, SourcePattern, hex_key_pairs};

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
    /// The `wm:` image, read at start-up (by `resolve`, from `watermark_file`).
    pub watermark: Option<std::sync::Arc<bytes::Bytes>>,
    /// The file `watermark` names (relative paths resolved against the config's directory).
    pub watermark_file: Option<std::path::PathBuf>,
    /// Which addresses absolute sources may resolve to.
    pub source_policy: crate::net::AddressPolicy,
    /// Source formats the route accepts (`allowed_mime_types`); `None`: every decodable one.
    pub allowed_source_formats: Option<Vec<imgforge_imgproxy::Format>>,
    /// `Content-Security-Policy` of the route's image responses; `None`: not sent.
    pub content_security_policy: Option<http::HeaderValue>,
}

/// imgproxy's `Content-Security-Policy` for image responses (it matters for SVG: no script,
/// no external reference, sandboxed).
pub const IMAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

/// Token-bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Validates a site's routes (`local_root`: whether the site is served from a directory); a
/// site without routes gets one proxy route at `/`.
pub(super) fn routes(
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
                let d = |v: Option<crate::units::HumanDuration>, default: u64| {
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
    check(r.allowed_mime_types.is_some(), "allowed_mime_types");
    check(
        r.content_security_policy.is_some(),
        "content_security_policy",
    );
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
    let allowed_source_formats = r.allowed_mime_types.as_ref().map(|types| {
        let mut formats = Vec::new();
        for t in types {
            match mime_format(t) {
                Some(f) if !formats.contains(&f) => formats.push(f),
                Some(_) => {}
                None => err(
                    "allowed_mime_types",
                    format!("{t:?} is not an image type imgforge knows (e.g. \"image/jpeg\")"),
                ),
            }
        }
        if types.is_empty() {
            err(
                "allowed_mime_types",
                "empty: no source could be transformed".into(),
            );
        }
        formats
    });
    let content_security_policy = match r.content_security_policy.as_deref() {
        None => Some(http::HeaderValue::from_static(IMAGE_CSP)),
        Some(p) if p.trim().is_empty() => None,
        Some(p) => match http::HeaderValue::from_str(p.trim()) {
            Ok(v) => Some(v),
            Err(_) => {
                err(
                    "content_security_policy",
                    "not a valid header value (control characters?)".into(),
                );
                None
            }
        },
    };
    // Read (and refused when empty or unreadable) by `resolve`.
    let watermark_file = r.watermark.as_ref().map(|p| loc.resolve(p));
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
        watermark: None,
        watermark_file,
        source_policy,
        allowed_source_formats,
        content_security_policy,
    }
}

/// The format of a MIME type name (`image/jpg`, `image/pjpeg` and `image/heic` as their usual
/// aliases).
pub fn mime_format(mime: &str) -> Option<imgforge_imgproxy::Format> {
    use imgforge_imgproxy::Format;
    Some(match mime.trim().to_ascii_lowercase().as_str() {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => Format::Jpeg,
        "image/png" => Format::Png,
        "image/webp" => Format::Webp,
        "image/avif" => Format::Avif,
        "image/gif" => Format::Gif,
        "image/heic" | "image/heif" => Format::Heic,
        "image/tiff" => Format::Tiff,
        "image/bmp" => Format::Bmp,
        "image/x-icon" | "image/vnd.microsoft.icon" => Format::Ico,
        "image/svg+xml" => Format::Svg,
        "image/jxl" => Format::Jxl,
        _ => return None,
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
    fn rates() {
        assert_eq!(rate("10/s"), Ok(10.0));
        assert_eq!(rate("60/m"), Ok(1.0));
        assert!(rate("10").is_err());
        assert!(rate("0/s").is_err());
        assert!(rate("x/s").is_err());
        assert!(rate("5/d").is_err());
    }
}
