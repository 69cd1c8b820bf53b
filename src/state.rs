//! State shared by the edge and the admin listener.
//!
//! The routing table and the backends live together in a [`Runtime`] behind an `ArcSwap`, so a
//! future config reload swaps them in one step while in-flight requests keep the old one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;

use std::net::IpAddr;

use pingora::cache::lock::CacheKeyLockImpl;

use crate::cache::TieredStorage;
use crate::config::{Config, Origin, RateLimit, Route, Site};
use crate::imgproxy::internal::RouteToken;
use crate::metrics::{Metrics, RouteMetrics};
use crate::protect::ratelimit::{Limiter, Quota};
use crate::routing::{RouteId, Router};
use crate::static_files::LocalRoot;
use crate::upstream::Pool;

/// Where a site's requests go.
#[derive(Clone)]
pub enum Backend {
    Pool(Arc<Pool>),
    Root(Arc<LocalRoot>),
}

/// One route of the running configuration with what its requests need resolved once: the
/// route itself, its site's backend, its rate limiter and its metric handles.
pub struct RouteRuntime {
    /// The [`Runtime::epoch`] of the runtime this route belongs to.
    pub epoch: u64,
    pub id: RouteId,
    pub site: Arc<Site>,
    pub route: Route,
    /// The site's origin (`None`: a site whose image routes take absolute sources only).
    pub backend: Option<Backend>,
    /// The per-client rate limit, when the route has one.
    pub limiter: Option<Limiter<IpAddr>>,
    /// The route's bucket name in fleet mode (`SITE:PREFIX`), made once.
    pub fleet_scope: String,
    pub metrics: Arc<RouteMetrics>,
}

/// A site of the running configuration.
struct SiteRuntime {
    routes: Vec<Arc<RouteRuntime>>,
    /// Requests for this site that matched none of its routes.
    no_route: Arc<RouteMetrics>,
}

/// Routing table + backends, built from one config.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    /// Tells this runtime from the others of the process: a [`RouteId`] names a route of one
    /// runtime only (the image service checks it, a reload may have come in between).
    pub epoch: u64,
    /// By site name.
    pub backends: HashMap<String, Backend>,
    /// By site index, as the router numbers them.
    sites: Vec<SiteRuntime>,
    /// The process-wide cap, if configured.
    pub global_limiter: Option<Limiter<()>>,
    /// Metric handles of requests that matched no site.
    pub unmatched: Arc<RouteMetrics>,
}

/// How many client addresses one limiter remembers at most.
const LIMITER_KEYS: usize = 100_000;

fn quota(r: &RateLimit) -> Quota {
    Quota {
        per_second: r.per_second,
        burst: r.burst,
    }
}

impl Runtime {
    /// Builds the runtime (health checks start with [`Runtime::start_health_checks`]).
    pub fn build(config: Arc<Config>, metrics: &Metrics) -> Result<Self, String> {
        static EPOCH: AtomicU64 = AtomicU64::new(0);
        let epoch = EPOCH.fetch_add(1, Ordering::Relaxed);
        let router = Router::new(&config);
        let mut backends = HashMap::new();
        let mut sites = Vec::new();
        for (site_index, site) in router.sites().iter().enumerate() {
            let backend = match &site.origin {
                Origin::Servers(up) => {
                    let pool = Pool::new(&site.name, up)
                        .map_err(|e| format!("site {:?}: origin pool: {e}", site.name))?;
                    Some(Backend::Pool(pool))
                }
                Origin::Root(dir) => {
                    Some(Backend::Root(Arc::new(LocalRoot::new(dir).map_err(
                        |e| format!("site {:?}: root {}: {e}", site.name, dir.display()),
                    )?)))
                }
                // Image routes with absolute sources only (validation allows nothing else).
                Origin::None => None,
            };
            if let Some(backend) = &backend {
                backends.insert(site.name.clone(), backend.clone());
            }
            let routes = site
                .routes
                .iter()
                .enumerate()
                .map(|(route_index, route)| {
                    Arc::new(RouteRuntime {
                        epoch,
                        id: RouteId {
                            site: site_index,
                            route: route_index,
                        },
                        site: site.clone(),
                        route: route.clone(),
                        backend: backend.clone(),
                        limiter: route
                            .rate_limit
                            .as_ref()
                            .map(|rl| Limiter::new(quota(rl), LIMITER_KEYS)),
                        fleet_scope: format!("{}:{}", site.name, route.prefix),
                        metrics: Arc::new(RouteMetrics::new(metrics, &site.name, &route.prefix)),
                    })
                })
                .collect();
            sites.push(SiteRuntime {
                routes,
                no_route: Arc::new(RouteMetrics::new(metrics, &site.name, "-")),
            });
        }
        let global_limiter = config
            .server
            .global_rate_limit
            .as_ref()
            .map(|rl| Limiter::new(quota(rl), 1));
        Ok(Self {
            config,
            router,
            epoch,
            backends,
            sites,
            global_limiter,
            unmatched: Arc::new(RouteMetrics::new(metrics, "-", "-")),
        })
    }

    /// The route `id` names in this runtime.
    pub fn route(&self, id: RouteId) -> Option<&Arc<RouteRuntime>> {
        self.sites.get(id.site)?.routes.get(id.route)
    }

    /// Metric handles of requests for the site at `index` that matched none of its routes.
    pub fn no_route(&self, index: usize) -> &Arc<RouteMetrics> {
        self.sites
            .get(index)
            .map_or(&self.unmatched, |s| &s.no_route)
    }

    /// Finds a route by its site's name and its prefix (a slow scan: for requests that carry
    /// names, not a [`RouteId`] of this runtime).
    pub fn route_named(&self, site: &str, prefix: &str) -> Option<&Arc<RouteRuntime>> {
        self.sites
            .iter()
            .flat_map(|s| s.routes.iter())
            .find(|r| r.site.name == site && r.route.prefix == prefix)
    }

    /// The route the edge named for the image service: by its token when the token is of this
    /// runtime (an index, no search), else — a reload came in between — by its names.
    pub fn route_for_image(
        &self,
        token: Option<&str>,
        site: &str,
        prefix: &str,
    ) -> Option<&Arc<RouteRuntime>> {
        token
            .and_then(|t| t.parse::<RouteToken>().ok())
            .filter(|t| t.epoch == self.epoch)
            .and_then(|t| {
                self.route(RouteId {
                    site: t.site,
                    route: t.route,
                })
            })
            .or_else(|| self.route_named(site, prefix))
    }

    /// Starts the active health checks of every pool (on the calling tokio runtime).
    pub fn start_health_checks(&self) {
        for backend in self.backends.values() {
            if let Backend::Pool(pool) = backend {
                crate::upstream::spawn_health_checks(pool);
            }
        }
    }
}

/// The response cache: storage and the lock that coalesces concurrent misses of one key.
#[derive(Clone, Copy)]
pub struct Cache {
    pub storage: &'static TieredStorage,
    pub lock: &'static CacheKeyLockImpl,
}

/// Process-wide state.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub metrics: Metrics,
    /// The private Unix socket of the image service (see [`crate::imaging`]).
    pub image_socket: std::path::PathBuf,
    /// The response cache (memory + disk), when configured; leaked once at start-up because
    /// pingora-cache takes `&'static` storage.
    pub cache: Option<Cache>,
    /// Per-source purge generations (part of every image variant key).
    pub generations: crate::cache::generations::Generations,
    /// Fleet mode (`[cluster]`), fixed at start-up.
    pub fleet: Option<crate::fleet::Fleet>,
    /// `server.max_requests_per_client`, fixed at start-up.
    pub per_client: Option<Arc<crate::protect::concurrency::PerClient>>,
    started: Instant,
    /// The fleet's purges missed while this node was away are applied (see `purge`).
    purges_synced: AtomicBool,
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Shared {
    /// Wraps a runtime; not ready until [`Shared::set_ready`].
    pub fn new(
        runtime: Runtime,
        metrics: Metrics,
        image_socket: std::path::PathBuf,
        cache: Option<Cache>,
        generations: crate::cache::generations::Generations,
        fleet: Option<crate::fleet::Fleet>,
    ) -> Arc<Self> {
        let max = runtime.config.server.max_requests_per_client;
        let per_client = (max > 0).then(|| crate::protect::concurrency::PerClient::new(max));
        Arc::new(Self {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            image_socket,
            cache,
            per_client,
            generations,
            fleet,
            started: Instant::now(),
            purges_synced: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        })
    }

    /// Seconds since start.
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Serving: the public listeners accept connections and no shutdown has begun.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// The fleet's purge listener caught up with Redis (first resync applied).
    pub fn set_purges_synced(&self) {
        self.purges_synced.store(true, Ordering::Release);
    }

    /// See [`Shared::set_purges_synced`]; always true without `[cluster]`.
    pub fn purges_synced(&self) -> bool {
        self.fleet.is_none() || self.purges_synced.load(Ordering::Acquire)
    }

    /// Marks the public listeners as accepting.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// A shutdown or upgrade has begun: readiness turns false so balancers stop sending traffic.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// See [`Shared::set_draining`].
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RegistrySettings;

    fn runtime() -> Runtime {
        let text = r#"
[[site]]
name = "a"
hosts = ["a.test"]
[site.origin]
servers = ["127.0.0.1:1"]
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/thumbs"
kind = "imgproxy"
allow_unsigned = true
"#;
        let config = crate::config::parse(std::path::Path::new("t.toml"), text, |_| None)
            .expect("valid config");
        let metrics = Metrics::new(&RegistrySettings::default()).expect("metrics");
        Runtime::build(Arc::new(config), &metrics).expect("runtime")
    }

    #[test]
    fn the_image_service_finds_the_route_by_token_then_by_names() {
        let rt = runtime();
        let prefix = |r: Option<&Arc<RouteRuntime>>| r.map(|r| r.route.prefix.clone());
        let thumbs = rt.route_named("a", "/thumbs").expect("route").id;
        let token = RouteToken {
            epoch: rt.epoch,
            site: thumbs.site,
            route: thumbs.route,
        }
        .to_string();
        // The token wins over the names (it is what the edge matched).
        assert_eq!(
            prefix(rt.route_for_image(Some(&token), "a", "/img")).as_deref(),
            Some("/thumbs")
        );
        // A token of another runtime (a reload in between), or none, or garbage: the names.
        let stale = RouteToken {
            epoch: rt.epoch + 1,
            site: thumbs.site,
            route: thumbs.route,
        }
        .to_string();
        for t in [Some(stale.as_str()), None, Some("x.y.z")] {
            assert_eq!(
                prefix(rt.route_for_image(t, "a", "/img")).as_deref(),
                Some("/img")
            );
        }
        assert!(rt.route_for_image(None, "a", "/none").is_none());
        // Each build is another runtime.
        assert_ne!(runtime().epoch, rt.epoch);
    }
}
