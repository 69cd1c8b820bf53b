//! `POST /purge` on the admin listener, protected by `server.admin_token`:
//! - `?url=URL` — one URL as clients request it (every negotiated variant of an image URL);
//! - `?site=NAME&source=SOURCE` — every variant of one source (its generation is bumped);
//! - `?all=1` — everything.

use http::StatusCode;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;

use crate::cache::policy::{image_key, proxy_key, source_key};
use crate::config::RouteKind;
use crate::imgproxy::internal::parse_image_url;
use crate::protect::auth::bearer_matches;
use crate::routing::RouteMatch;
use crate::state::Shared;

/// Handles one purge request; returns the status and a short JSON or text body.
pub(super) async fn purge(shared: &Shared, session: &ServerSession) -> (StatusCode, String) {
    let req = session.req_header();
    if req.method != http::Method::POST && req.method.as_str() != "PURGE" {
        return (StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into());
    }
    let runtime = shared.runtime.load_full();
    let Some(token) = runtime.config.server.admin_token.as_deref() else {
        return (
            StatusCode::FORBIDDEN,
            "purge is disabled: set server.admin_token\n".into(),
        );
    };
    if !bearer_matches(&req.headers, &[token]) {
        tracing::warn!("purge refused: bad or missing admin token");
        return (StatusCode::UNAUTHORIZED, "unauthorized\n".into());
    }
    let Some(cache) = &shared.cache else {
        return (StatusCode::NOT_FOUND, "no cache is configured\n".into());
    };
    let query = req.uri.query().unwrap_or("");
    let param = |name: &str| form_value(query, name);

    if param("all").as_deref() == Some("1") {
        return match cache.storage.clear().await {
            Ok(n) => done("all", n),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("purge failed: {e}\n"),
            ),
        };
    }
    if let (Some(site), Some(source)) = (param("site"), param("source")) {
        // The original goes too, or new variants would be made from the old bytes.
        if let Err(e) = cache.storage.purge_key(&source_key(&site, &source)).await {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("purge failed: {e}\n"),
            );
        }
        return match shared.generations.bump(&site, &source) {
            Ok(g) => (
                StatusCode::OK,
                format!("{{\"purged\":\"source\",\"generation\":{g}}}\n"),
            ),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("purge failed: {e}\n"),
            ),
        };
    }
    let Some(url) = param("url") else {
        return (
            StatusCode::BAD_REQUEST,
            "give url=, site= and source=, or all=1\n".into(),
        );
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        return (
            StatusCode::BAD_REQUEST,
            "url is not an absolute URL\n".into(),
        );
    };
    let (Some(host), Some(target)) = (uri.host(), uri.path_and_query()) else {
        return (
            StatusCode::BAD_REQUEST,
            "url is not an absolute URL\n".into(),
        );
    };
    let (site, route) = match runtime.router.route(Some(host), uri.path()) {
        RouteMatch::Matched { site, route, .. } => (site, route),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "no site or route for this URL\n".into(),
            );
        }
    };
    let keys = match &route.kind {
        RouteKind::Imgproxy(image) => {
            let Ok(probe) = RequestHeader::build("GET", target.as_str().as_bytes(), None) else {
                return (StatusCode::BAD_REQUEST, "bad URL path\n".into());
            };
            match parse_image_url(&probe.uri, &probe.headers, &route.prefix, &image.settings) {
                Ok((parsed, _)) => {
                    let generation = shared.generations.get(&site.name, &parsed.source.to_url());
                    let c = &parsed.canonical;
                    [
                        c.clone(),
                        format!("{c}#webp"),
                        format!("{c}#avif"),
                        format!("info {c}"),
                    ]
                    .iter()
                    .map(|v| image_key(&site.name, &route.prefix, generation, v))
                    .collect()
                }
                Err(e) => return (StatusCode::BAD_REQUEST, format!("image URL: {e}\n")),
            }
        }
        _ => vec![proxy_key(&site.name, host, target.as_str())],
    };
    match cache.storage.purge_keys(&keys).await {
        Ok(n) => done("url", n as u64),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("purge failed: {e}\n"),
        ),
    }
}

fn done(what: &str, n: u64) -> (StatusCode, String) {
    tracing::info!(what, entries = n, "cache purged");
    (
        StatusCode::OK,
        format!("{{\"purged\":\"{what}\",\"entries\":{n}}}\n"),
    )
}

/// One `application/x-www-form-urlencoded` value of a query string.
/// The decoded value of `name` in a form-encoded query.
pub(super) fn form_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k)? == name).then(|| decode(v)).flatten()
    })
}

fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values() {
        let q = "url=http%3A%2F%2Fa.test%2Fimg%2Fx&all=1&bad=%zz&sp=a+b";
        assert_eq!(form_value(q, "url").as_deref(), Some("http://a.test/img/x"));
        assert_eq!(form_value(q, "all").as_deref(), Some("1"));
        assert_eq!(form_value(q, "bad"), None);
        assert_eq!(form_value(q, "sp").as_deref(), Some("a b"));
        assert_eq!(form_value(q, "none"), None);
    }
}
