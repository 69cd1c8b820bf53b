//! Purging this node's cache: one URL, a source's variants, or everything, however the purge
//! arrived: `POST /purge` on the admin listener (`admin::purge`), or another node of the fleet
//! through Redis ([`FleetPurges`]). Applying a purge twice is harmless.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;
use imgforge_cluster::{PurgeCursor, PurgeEvent, PurgeNotice};
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::cache::policy::{image_key, proxy_key, source_key};
use crate::config::RouteKind;
use crate::imgproxy::internal::parse_image_url;
use crate::routing::RouteMatch;
use crate::state::Shared;

/// One purge, however it arrived (this admin listener, or another node through the fleet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    /// Everything.
    All,
    /// Every variant of one source of one site (its generation is bumped).
    Source { site: String, source: String },
    /// One URL as clients request it.
    Url(String),
}

impl Purge {
    /// The fleet's form of this purge.
    pub fn to_event(&self) -> PurgeEvent {
        match self {
            Purge::All => PurgeEvent::All,
            Purge::Source { site, source } => PurgeEvent::Source {
                site: site.clone(),
                source: source.clone(),
            },
            Purge::Url(u) => PurgeEvent::Url(u.clone()),
        }
    }

    /// A purge another node published (`None`: a kind this build does not know).
    pub fn from_event(e: &PurgeEvent) -> Option<Purge> {
        match e {
            PurgeEvent::All => Some(Purge::All),
            PurgeEvent::Source { site, source } => Some(Purge::Source {
                site: site.clone(),
                source: source.clone(),
            }),
            PurgeEvent::Url(u) => Some(Purge::Url(u.clone())),
            _ => None,
        }
    }
}

/// Applies one purge to this node's tiers; the status and a short JSON or text body.
pub async fn apply(shared: &Shared, purge: &Purge) -> (StatusCode, String) {
    let Some(cache) = &shared.cache else {
        return (StatusCode::NOT_FOUND, "no cache is configured\n".into());
    };
    let runtime = shared.runtime.load_full();
    let url = match purge {
        Purge::All => {
            return match cache.storage.clear().await {
                Ok(n) => done("all", n),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("purge failed: {e}\n"),
                ),
            };
        }
        Purge::Source { site, source } => {
            // The original goes too, or new variants would be made from the old bytes.
            if let Err(e) = cache.storage.purge_key(&source_key(site, source)).await {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("purge failed: {e}\n"),
                );
            }
            return match shared.generations.bump(site, source) {
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
        Purge::Url(url) => url,
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

/// Applies the fleet's purges to this node: a listener on Redis (docs/cluster.md, "Purge"). The
/// cursor (how far this node got) is kept next to the disk cache, so a node restarted with its
/// disk tier replays exactly the purges it missed; without one it is told to drop everything.
pub struct FleetPurges {
    shared: Arc<Shared>,
    cursor_file: Option<PathBuf>,
}

impl FleetPurges {
    /// The listener of `shared`'s fleet (a no-op service without `[cluster]`).
    pub fn new(shared: Arc<Shared>, cursor_file: Option<PathBuf>) -> Self {
        Self {
            shared,
            cursor_file,
        }
    }

    async fn apply_notice(&self, notice: &PurgeNotice, node_id: &str) {
        match notice {
            PurgeNotice::Resync {
                clear_all,
                generations,
                ..
            } => {
                if *clear_all {
                    apply(&self.shared, &Purge::All).await;
                    return;
                }
                // Purges missed while away are replayed as `Purge` notices after this one; the
                // generations are a second line: a source Redis counts as purged more often than
                // this node saw is raised to that count (a change, so its old variants go).
                // Raised, not bumped: the next reconnect finds it level and changes nothing.
                let to = generations
                    .iter()
                    .map(|g| (g.site.as_str(), g.source.as_str(), g.generation));
                if let Err(e) = self.shared.generations.raise_all(to) {
                    tracing::warn!(error = %e, "cannot keep the purge generations");
                }
            }
            PurgeNotice::Purge { record, .. } => {
                if record.origin == node_id {
                    return; // applied when it was asked for
                }
                if let Some(p) = Purge::from_event(&record.event) {
                    let (status, body) = apply(&self.shared, &p).await;
                    tracing::info!(
                        from = %record.origin,
                        status = status.as_u16(),
                        result = body.trim(),
                        "fleet purge applied"
                    );
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for FleetPurges {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(fleet) = &self.shared.fleet else {
            return;
        };
        let coordinator = fleet.coordinator();
        let node_id = coordinator.node_id().to_string();
        let cursor = self
            .cursor_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<PurgeCursor>().ok());
        let mut listener = coordinator.purge_listener(cursor);
        loop {
            tokio::select! {
                notice = listener.recv() => {
                    let Some(notice) = notice else { return };
                    self.apply_notice(&notice, &node_id).await;
                    if let Some(f) = &self.cursor_file {
                        let tmp = f.with_extension("tmp");
                        if std::fs::write(&tmp, notice.cursor().to_string())
                            .and_then(|()| std::fs::rename(&tmp, f))
                            .is_err()
                        {
                            tracing::warn!(file = %f.display(), "cannot keep the fleet purge cursor");
                        }
                    }
                    if matches!(notice, PurgeNotice::Resync { .. }) {
                        self.shared.set_purges_synced();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
