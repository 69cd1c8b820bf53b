//! `GET /sign` on the admin listener, protected by `server.admin_token`: signs an image URL with
//! the route's newest key pair (the last one configured), after checking that the URL would be
//! served, so back-ends without an HMAC library can still hand out signed URLs.
//!
//! - `?site=NAME&route=PREFIX&path=/rs:fit:300/plain/a.jpg` → `PREFIX/SIGNATURE/rs:fit:300/plain/a.jpg`
//! - `?site=NAME&route=PREFIX&url=a.jpg&w=300&f=webp` (query API parameters, kept in the order
//!   given) → `PREFIX?url=a.jpg&w=300&f=webp&sig=SIGNATURE`

use http::StatusCode;
use pingora::protocols::http::ServerSession;

use super::purge::form_value;
use crate::config::RouteKind;
use crate::imgproxy::{self, RequestHints, query, sign_path};
use crate::protect::auth::bearer_matches;
use crate::state::Shared;

/// Handles one sign request; returns the status and the signed path (or a short error).
pub(super) fn sign(shared: &Shared, session: &ServerSession) -> (StatusCode, String) {
    let req = session.req_header();
    if req.method != http::Method::GET && req.method != http::Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
    }
    let runtime = shared.runtime.load_full();
    let Some(token) = runtime.config.server.admin_token.as_deref() else {
        return (
            StatusCode::FORBIDDEN,
            "sign is disabled: set server.admin_token\n".into(),
        );
    };
    if !bearer_matches(&req.headers, &[token]) {
        tracing::warn!("sign refused: bad or missing admin token");
        return (StatusCode::UNAUTHORIZED, "unauthorized\n".into());
    }
    let raw = req.uri.query().unwrap_or("");
    let (Some(site), Some(prefix)) = (form_value(raw, "site"), form_value(raw, "route")) else {
        return bad("give site= and route=, then path= or the query API parameters");
    };
    let route = runtime
        .config
        .sites
        .iter()
        .find(|s| s.name == site)
        .and_then(|s| s.routes.iter().find(|r| r.prefix == prefix));
    let Some(RouteKind::Imgproxy(image)) = route.map(|r| &r.kind) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no imgproxy route {prefix:?} on site {site:?}\n"),
        );
    };
    let settings = &image.settings;
    let Some(pair) = settings.key_pairs.last() else {
        return bad("the route has no key: its URLs need no signature");
    };
    let size = settings.signature_size;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let hints = RequestHints::default();
    let base = prefix.trim_end_matches('/');

    if let Some(path) = form_value(raw, "path") {
        let path = format!("/{}", path.trim_start_matches('/'));
        let signed = format!("/{}{path}", sign_path(pair, &path, size));
        return match imgproxy::parse_request(&signed, &hints, settings, now) {
            Ok(_) => (StatusCode::OK, format!("{base}{signed}\n")),
            Err(e) => bad(&e.to_string()),
        };
    }
    // The query API parameters exactly as given (still encoded), minus ours.
    let params: Vec<&str> = raw
        .split('&')
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(k, _)| k);
            !matches!(name, "site" | "route" | "sig" | "")
        })
        .collect();
    if params.is_empty() {
        return bad("give path= or the query API parameters (url=, w=, h=, f=, q=, t=)");
    }
    let url = query::signed_url(base, &params.join("&"), |text| sign_path(pair, text, size));
    let checked = url
        .split_once('?')
        .map(|(_, q)| imgproxy::parse_query_request(q, &hints, settings, now));
    match checked {
        Some(Ok(_)) => (StatusCode::OK, format!("{url}\n")),
        Some(Err(e)) => bad(&e.to_string()),
        None => bad("cannot build the URL"),
    }
}

fn bad(message: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("{message}\n"))
}
