//! `POST /purge` on the admin listener, protected by `server.admin_token`:
//! - `?url=URL` — one URL as clients request it (every negotiated variant of an image URL);
//! - `?site=NAME&source=SOURCE` — every variant of one source (its generation is bumped);
//! - `?all=1` — everything.
//!
//! Applied here ([`crate::purge`]), then published to the fleet when `[cluster]` is set.

use http::StatusCode;
use pingora::protocols::http::ServerSession;

use super::form::form_value;
use crate::protect::auth::bearer_matches;
use crate::purge::{Purge, apply};
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
    if shared.cache.is_none() {
        return (StatusCode::NOT_FOUND, "no cache is configured\n".into());
    }
    let query = req.uri.query().unwrap_or("");
    let param = |name: &str| form_value(query, name);
    let purge = if param("all").as_deref() == Some("1") {
        Purge::All
    } else if let (Some(site), Some(source)) = (param("site"), param("source")) {
        Purge::Source { site, source }
    } else if let Some(url) = param("url") {
        Purge::Url(url)
    } else {
        return (
            StatusCode::BAD_REQUEST,
            "give url=, site= and source=, or all=1\n".into(),
        );
    };
    let answer = apply(shared, &purge).await;
    if answer.0 != StatusCode::OK {
        return answer;
    }
    // Then the fleet: every other node applies it too (docs/cluster.md, "Purge").
    if let Some(fleet) = &shared.fleet
        && let Err(e) = fleet.coordinator().publish_purge(&purge.to_event()).await
    {
        tracing::warn!(error = %e, "purge applied on this node only: the fleet was not told");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("purged on this node only; the fleet was not told ({e}): retry\n"),
        );
    }
    answer
}
