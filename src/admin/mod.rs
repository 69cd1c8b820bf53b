//! The admin listener: `/health`, `/readyz`, `/status`, `/metrics`, `POST /purge`, `GET /sign` and
//! the playground (`/playground`), on its own address so it is never exposed with the public
//! listeners.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;

mod form;
mod playground;
pub mod probe;
mod purge;
mod sign;

use crate::config::{HostPattern, Origin};
use crate::state::{Backend, Shared};
use crate::upstream::ServerHealth;

/// The admin HTTP application.
pub struct Admin {
    shared: Arc<Shared>,
    playground: playground::Playground,
}

impl Admin {
    /// An admin app over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            playground: playground::Playground::new(),
        }
    }

    fn status_json(&self) -> Vec<u8> {
        let runtime = self.shared.runtime.load();
        let sites = runtime
            .config
            .sites
            .iter()
            .map(|site| SiteStatus {
                name: &site.name,
                hosts: site
                    .hosts
                    .iter()
                    .map(|h| match h {
                        HostPattern::Exact(n) => n.clone(),
                        HostPattern::Suffix(s) => format!("*{s}"),
                    })
                    .collect(),
                default: site.default,
                origin: match (&site.origin, runtime.backends.get(&site.name)) {
                    (Origin::Root(dir), _) => OriginStatus::Root {
                        root: dir.display().to_string(),
                    },
                    (Origin::Servers(_), Some(Backend::Pool(pool))) => OriginStatus::Servers {
                        servers: pool.health(),
                    },
                    (Origin::Servers(_), _) | (Origin::None, _) => {
                        OriginStatus::Servers { servers: vec![] }
                    }
                },
                routes: site
                    .routes
                    .iter()
                    .map(|r| RouteStatus {
                        prefix: &r.prefix,
                        kind: r.kind.name(),
                    })
                    .collect(),
            })
            .collect();
        let status = Status {
            name: "imgforge",
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.shared.uptime(),
            ready: self.shared.is_ready(),
            sites,
            cluster: self.shared.fleet.as_ref().map(|f| {
                let c = f.coordinator().status();
                ClusterStatus {
                    endpoint: c.endpoint,
                    mode: c.mode,
                    node_id: c.node_id,
                    connection: c.connection.as_str(),
                    breaker: c.breaker.as_str(),
                    consecutive_failures: c.consecutive_failures,
                    last_ok_seconds_ago: c.last_ok_ago.map(|d| d.as_secs_f64()),
                    last_error: c.last_error.map(|(_, e)| e),
                }
            }),
        };
        serde_json::to_vec_pretty(&status).unwrap_or_default()
    }

    fn metrics_text(&self) -> Vec<u8> {
        let runtime = self.shared.runtime.load();
        let gauge = &self.shared.metrics.upstream_healthy;
        for backend in runtime.backends.values() {
            if let Backend::Pool(pool) = backend {
                for s in pool.health() {
                    gauge
                        .with_label_values(&[pool.site(), &s.server])
                        .set(i64::from(s.healthy));
                }
            }
        }
        if let Some(cache) = &self.shared.cache {
            let s = cache.storage.stats();
            let tiers = &self.shared.metrics.cache_tier;
            for (tier, t) in [("memory", &s.memory), ("disk", &s.disk)] {
                for (kind, v) in [
                    ("hits", t.hits),
                    ("misses", t.misses),
                    ("inserts", t.inserts),
                    ("rejected", t.rejected),
                    ("evictions", t.evictions),
                    ("evicted_bytes", t.evicted_bytes),
                    ("bytes", t.bytes),
                    ("entries", t.entries),
                    ("corrupt", t.corrupt),
                    ("errors", t.errors),
                    ("purges", t.purges),
                ] {
                    tiers
                        .with_label_values(&[tier, kind])
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
            }
        }
        self.shared
            .metrics
            .imgproxy
            .refresh(crate::transform::vips_memory());
        self.shared.metrics.render()
    }
}

#[derive(Serialize)]
struct Status<'a> {
    name: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    ready: bool,
    sites: Vec<SiteStatus<'a>>,
    /// Fleet mode's link to Redis (absent without `[cluster]`); readiness never depends on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterStatus>,
}

#[derive(Serialize)]
struct ClusterStatus {
    endpoint: String,
    mode: &'static str,
    node_id: String,
    connection: &'static str,
    breaker: &'static str,
    consecutive_failures: u32,
    last_ok_seconds_ago: Option<f64>,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct SiteStatus<'a> {
    name: &'a str,
    hosts: Vec<String>,
    default: bool,
    origin: OriginStatus,
    routes: Vec<RouteStatus<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OriginStatus {
    Servers { servers: Vec<ServerHealth> },
    Root { root: String },
}

#[derive(Serialize)]
struct RouteStatus<'a> {
    prefix: &'a str,
    kind: &'static str,
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    if let Ok(v) = resp.body().len().to_string().parse() {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
    resp
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let text = "text/plain; charset=utf-8";
        match path.as_str() {
            "/health" => reply(StatusCode::OK, text, b"imgforge is running\n".to_vec()),
            "/purge" => {
                let (status, body) = purge::purge(&self.shared, session).await;
                let ct = if body.starts_with('{') {
                    "application/json"
                } else {
                    text
                };
                reply(status, ct, body.into_bytes())
            }
            "/sign" => {
                let (status, body) = sign::sign(&self.shared, session);
                reply(status, text, body.into_bytes())
            }
            "/readyz" => {
                if self.shared.is_ready() {
                    reply(StatusCode::OK, text, b"ready\n".to_vec())
                } else if self.shared.is_draining() {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        text,
                        b"draining\n".to_vec(),
                    )
                } else {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        text,
                        b"starting\n".to_vec(),
                    )
                }
            }
            "/status" => reply(StatusCode::OK, "application/json", self.status_json()),
            "/metrics" => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics_text(),
            ),
            p if p == "/playground" || p.starts_with("/playground/") => {
                self.playground.serve(&self.shared, session).await
            }
            _ => reply(StatusCode::NOT_FOUND, text, b"not found\n".to_vec()),
        }
    }
}
