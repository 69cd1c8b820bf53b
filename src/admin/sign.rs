//! `GET /sign` on the admin listener, protected by `server.admin_token`: signs an image URL with
//! the route's newest key pair (the last one configured), after checking that the URL would be
//! served, so back-ends without an HMAC library can still hand out signed URLs.
//!
//! - `?site=NAME&route=PREFIX&path=/rs:fit:300/plain/a.jpg` → `PREFIX/SIGNATURE/rs:fit:300/plain/a.jpg`
//! - `?site=NAME&route=PREFIX&url=a.jpg&w=300&f=webp` (query API parameters, kept in the order
//!   given) → `PREFIX?url=a.jpg&w=300&f=webp&sig=SIGNATURE`
//!
//! The playground (`super::playground`) signs through the same [`Signer`].

use http::StatusCode;
use pingora::protocols::http::ServerSession;

use super::form::form_value;
use crate::config::RouteKind;
use crate::imgproxy::{
    self, ImageRequest, KeyPair, RequestHints, RouteSettings, UrlError, query, sign_path,
};
use crate::protect::auth::bearer_matches;
use crate::state::Shared;

/// How URLs of one route are signed: with its newest key pair, or not at all (the signature
/// segment is then `insecure`, as imgproxy's client libraries write it, and the query API gets
/// no `sig`).
#[derive(Clone, Copy)]
pub(super) enum Signer<'a> {
    Key { pair: &'a KeyPair, size: usize },
    Unsigned,
}

impl<'a> Signer<'a> {
    /// The route's newest key pair, if it has one.
    pub(super) fn newest(settings: &'a RouteSettings) -> Option<Self> {
        settings.key_pairs.last().map(|pair| Signer::Key {
            pair,
            size: settings.signature_size,
        })
    }

    /// The signature segment for `text` (a path starting with `/`, or `?` and a query).
    fn signature(&self, text: &str) -> String {
        match self {
            Signer::Key { pair, size } => sign_path(pair, text, *size),
            Signer::Unsigned => "insecure".into(),
        }
    }

    /// `/SIGNATURE/path` for a path after the signature segment (`/rs:fit:300/plain/a.jpg`),
    /// checked as the route would check it.
    pub(super) fn path(
        &self,
        settings: &RouteSettings,
        path: &str,
    ) -> Result<(String, ImageRequest), UrlError> {
        let path = format!("/{}", path.trim_start_matches('/'));
        let signed = format!("/{}{path}", self.signature(&path));
        let request = imgproxy::parse_request(&signed, &RequestHints::default(), settings, now())?;
        Ok((signed, request))
    }

    /// `PREFIX?QUERY&sig=…` (no `sig` when unsigned) for query API parameters, checked as the
    /// route would check them.
    pub(super) fn query(
        &self,
        settings: &RouteSettings,
        prefix: &str,
        params: &str,
    ) -> Result<(String, ImageRequest), UrlError> {
        let url = match self {
            Signer::Key { .. } => query::signed_url(prefix, params, |t| self.signature(t)),
            Signer::Unsigned => format!("{}?{params}", prefix.trim_end_matches('/')),
        };
        let q = url.split_once('?').map_or("", |(_, q)| q);
        let request = imgproxy::parse_query_request(q, &RequestHints::default(), settings, now())?;
        Ok((url, request))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

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
    let Some(signer) = Signer::newest(settings) else {
        return bad("the route has no key: its URLs need no signature");
    };
    let base = prefix.trim_end_matches('/');

    if let Some(path) = form_value(raw, "path") {
        return match signer.path(settings, &path) {
            Ok((signed, _)) => (StatusCode::OK, format!("{base}{signed}\n")),
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
    match signer.query(settings, base, &params.join("&")) {
        Ok((url, _)) => (StatusCode::OK, format!("{url}\n")),
        Err(e) => bad(&e.to_string()),
    }
}

fn bad(message: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("{message}\n"))
}
