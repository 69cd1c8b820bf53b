//! State shared by the edge and the admin listener.
//!
//! The routing table and the backends live together in a [`Runtime`] behind an `ArcSwap`, so a
//! future config reload swaps them in one step while in-flight requests keep the old one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;

use std::net::IpAddr;

use pingora::cache::lock::CacheKeyLockImpl;

use crate::cache::TieredStorage;
use crate::config::{Config, Origin, RateLimit};
use crate::metrics::Metrics;
use crate::protect::ratelimit::{Limiter, Quota};
use crate::routing::Router;
use crate::static_files::LocalRoot;
use crate::upstream::Pool;

/// Where a site's requests go.
pub enum Backend {
    Pool(Arc<Pool>),
    Root(Arc<LocalRoot>),
}

/// Routing table + backends, built from one config.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    /// By site name.
    pub backends: HashMap<String, Backend>,
    /// Per-client limiters by (site, route prefix).
    pub limiters: HashMap<(String, String), Arc<Limiter<IpAddr>>>,
    /// The process-wide cap, if configured.
    pub global_limiter: Option<Limiter<()>>,
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
    pub fn build(config: Arc<Config>) -> Result<Self, String> {
        let router = Router::new(&config);
        let mut backends = HashMap::new();
        let mut limiters = HashMap::new();
        for site in &config.sites {
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
            if let Some(backend) = backend {
                backends.insert(site.name.clone(), backend);
            }
            for route in &site.routes {
                if let Some(rl) = &route.rate_limit {
                    limiters.insert(
                        (site.name.clone(), route.prefix.clone()),
                        Arc::new(Limiter::new(quota(rl), LIMITER_KEYS)),
                    );
                }
            }
        }
        let global_limiter = config
            .server
            .global_rate_limit
            .as_ref()
            .map(|rl| Limiter::new(quota(rl), 1));
        Ok(Self {
            config,
            router,
            backends,
            limiters,
            global_limiter,
        })
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
    /// `server.max_requests_per_client`, fixed at start-up.
    pub per_client: Option<Arc<crate::protect::concurrency::PerClient>>,
    started: Instant,
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
            started: Instant::now(),
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
