//! The edge's caching decisions (pure): cache keys, whether and how long a response is kept,
//! and the `X-Cache-Status` value.

use std::time::{Duration, SystemTime};

use pingora::cache::cache_control::{CacheControl, InterpretCacheControl};
use pingora::cache::{CacheKey, CacheMeta, CachePhase, NoCacheReason, RespCacheable};
use pingora::http::ResponseHeader;

use imgforge_config::CachePolicy;

/// The key of a variant of an image route: site, route, the source's purge generation and the
/// canonical request with its negotiated format. Never the signature or the expiry (they are
/// not in the canonical form).
pub fn image_key(site: &str, prefix: &str, generation: u64, variant: &str) -> CacheKey {
    CacheKey::new(
        format!("img\n{site}\n{prefix}\n{generation}\n{variant}"),
        "",
    )
}

/// The key of a source original kept by the image service (see `imaging::source_cache`).
pub fn source_key(site: &str, source_url: &str) -> CacheKey {
    CacheKey::new(format!("src\n{site}\n{source_url}"), "")
}

/// The key of a proxied response: site, lower-cased host and the path with its query.
pub fn proxy_key(site: &str, host: &str, path_and_query: &str) -> CacheKey {
    CacheKey::new(
        format!(
            "px\n{site}\n{}\n{path_and_query}",
            host.to_ascii_lowercase()
        ),
        "",
    )
}

/// Whether (and until when) a response is cached, by HTTP caching rules bounded by the route's
/// policy. Only 200s are kept: an error is never cached, and neither is anything private,
/// `no-store`, setting a cookie, or varying on a header other than the ones the key covers.
pub fn decide(
    resp: &ResponseHeader,
    policy: &CachePolicy,
    key_covers_accept: bool,
    now: SystemTime,
) -> RespCacheable {
    let uncacheable = |why: &'static str| RespCacheable::Uncacheable(NoCacheReason::Custom(why));
    if resp.status.as_u16() != 200 {
        return uncacheable("status");
    }
    if resp.headers.contains_key(http::header::SET_COOKIE) {
        return uncacheable("set-cookie");
    }
    if let Some(vary) = resp
        .headers
        .get(http::header::VARY)
        .and_then(|v| v.to_str().ok())
    {
        let covered = vary.split(',').map(str::trim).all(|h| {
            h.eq_ignore_ascii_case("accept-encoding")
                || (key_covers_accept && h.eq_ignore_ascii_case("accept"))
        });
        if !covered {
            return uncacheable("vary");
        }
    }
    let cc = CacheControl::from_resp_headers(resp);
    if cc.as_ref().is_some_and(|c| c.no_store() || c.private()) {
        return uncacheable("private");
    }
    let explicit = cc
        .as_ref()
        .and_then(|c| c.fresh_duration())
        .or_else(|| expires_in(resp, now));
    let ttl = explicit
        .unwrap_or(policy.default_ttl)
        .clamp(policy.min_ttl, policy.max_ttl);
    if ttl.is_zero() {
        return uncacheable("ttl 0");
    }
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    let swr = cc
        .as_ref()
        .and_then(|c| c.stale_while_revalidate().ok().flatten())
        .unwrap_or_else(|| secs(policy.stale_while_revalidate));
    let sie = cc
        .as_ref()
        .and_then(|c| c.stale_if_error().ok().flatten())
        .unwrap_or_else(|| secs(policy.stale_if_error));
    RespCacheable::Cacheable(CacheMeta::new(now + ttl, now, swr, sie, resp.clone()))
}

fn expires_in(resp: &ResponseHeader, now: SystemTime) -> Option<Duration> {
    let expires = resp.headers.get(http::header::EXPIRES)?.to_str().ok()?;
    let at = httpdate::parse_http_date(expires).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `X-Cache-Status` for a cache phase. A response fetched upstream that turned out not to be
/// storable (an error, `no-store`) is a `MISS`, as nginx reports it; `BYPASS` means the cache
/// was not consulted.
pub fn status(phase: CachePhase, fetched_upstream: bool) -> &'static str {
    match phase {
        CachePhase::Disabled(_) | CachePhase::Bypass if fetched_upstream => "MISS",
        CachePhase::Hit => "HIT",
        CachePhase::Miss => "MISS",
        CachePhase::Stale | CachePhase::StaleUpdating => "STALE",
        CachePhase::Expired => "EXPIRED",
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => "REVALIDATED",
        _ => "BYPASS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::cache::key::CacheHashKey;

    fn policy() -> CachePolicy {
        CachePolicy {
            default_ttl: Duration::from_secs(60),
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(3600),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::from_secs(300),
        }
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).expect("resp");
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).expect("header");
        }
        r
    }

    fn ttl(r: RespCacheable, now: SystemTime) -> Option<u64> {
        match r {
            RespCacheable::Cacheable(m) => Some(
                m.fresh_until()
                    .duration_since(now)
                    .map_or(0, |d| d.as_secs()),
            ),
            RespCacheable::Uncacheable(_) => None,
        }
    }

    #[test]
    fn freshness_rules() {
        let now = SystemTime::now();
        let p = policy();
        type Case = (u16, Vec<(&'static str, &'static str)>, bool, Option<u64>);
        let cases: Vec<Case> = vec![
            (200, vec![], false, Some(60)),
            (
                200,
                vec![("cache-control", "max-age=120")],
                false,
                Some(120),
            ),
            (200, vec![("cache-control", "max-age=1")], false, Some(10)),
            (
                200,
                vec![("cache-control", "max-age=99999")],
                false,
                Some(3600),
            ),
            (200, vec![("cache-control", "no-store")], false, None),
            (
                200,
                vec![("cache-control", "private, max-age=60")],
                false,
                None,
            ),
            (200, vec![("set-cookie", "a=b")], false, None),
            (404, vec![("cache-control", "max-age=60")], false, None),
            (502, vec![], false, None),
            (200, vec![("vary", "Accept")], true, Some(60)),
            (200, vec![("vary", "Accept")], false, None),
            (200, vec![("vary", "Cookie")], true, None),
            (200, vec![("vary", "Accept-Encoding")], false, Some(60)),
        ];
        for (status, headers, covers, want) in cases {
            let got = ttl(decide(&resp(status, &headers), &p, covers, now), now);
            assert_eq!(got, want, "{status} {headers:?}");
        }
    }

    #[test]
    fn keys_differ_by_part() {
        assert_ne!(
            image_key("s", "/img", 0, "v").combined(),
            image_key("s", "/img", 1, "v").combined(),
            "a purge generation makes a new key"
        );
        let a = image_key("s", "/img", 0, "/w:10/plain/a.jpg");
        assert_ne!(
            a.combined(),
            image_key("s", "/img", 0, "/w:10/plain/a.jpg#webp").combined()
        );
        assert_ne!(
            a.combined(),
            image_key("t", "/img", 0, "/w:10/plain/a.jpg").combined()
        );
        assert_eq!(
            proxy_key("s", "A.test", "/x?y").combined(),
            proxy_key("s", "a.test", "/x?y").combined()
        );
    }
}
