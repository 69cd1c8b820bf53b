//! Per-request context carried through the proxy phases.
//!
//! What a request is gets decided once, in `request_filter`, as a [`Kind`] carrying exactly the
//! data that kind of request needs; the later phases match on it instead of probing optional
//! fields.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::Span;

use crate::metrics::{ErrorType, GaugeGuard, Metrics, RouteMetrics};
use crate::state::RouteRuntime;
use crate::upstream::Pool;

/// What the phases learn about one request.
pub struct RequestCtx {
    pub started: Instant,
    pub request_id: String,
    /// What the request is (see [`Kind`]).
    pub kind: Kind,
    /// The matched route of this request's runtime snapshot (`None`: no site or no route).
    pub route: Option<Arc<RouteRuntime>>,
    /// Where the request is counted: its route's handles, or its site's / nobody's when it
    /// matched none. Set in `request_filter` before anything can answer.
    pub metrics: Option<Arc<RouteMetrics>>,
    /// Set when this request may be served from / stored in the cache.
    pub cache: Option<CacheTarget>,
    /// A slot of the per-client concurrency cap, freed when the request ends.
    pub client_slot: Option<crate::protect::concurrency::Slot>,
    /// The response came from an upstream (origin or image service), not from the cache.
    pub proxied: bool,
    /// `X-Cache-Status` once known.
    pub cache_status: Option<&'static str>,
    /// Status answered by the edge itself or seen from the origin.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The request's span (see `edge::scope`), from `request_filter` on: its id on every log
    /// line, the root of its trace.
    pub span: Span,
    /// The exchange with the current upstream, closed when its response ends.
    pub upstream_span: Span,
    _in_flight: GaugeGuard,
}

/// What a request is.
pub enum Kind {
    /// Answered by the edge itself: unknown host, no route, refused before a backend was
    /// chosen, or a file of the site's local root.
    Edge,
    /// Proxied to the site's origin pool.
    Proxy(OriginHop),
    /// On an image route, from the route match on (whatever happens next).
    Image(ImageHop),
}

/// A request on its way to an origin server.
pub struct OriginHop {
    pub pool: Arc<Pool>,
    /// Servers already tried (a failed connect retries on another one).
    pub tried: Vec<SocketAddr>,
    /// The server of the current attempt.
    pub server: Option<SocketAddr>,
}

/// A request on an image route.
pub struct ImageHop {
    /// Counts it in imgproxy's `requests_in_progress` until the request ends.
    _in_progress: GaugeGuard,
    /// The URL was verified: the image service answers it.
    pub forwarded: bool,
    /// imgproxy's error type of a failure the edge itself answered.
    pub error: Option<ErrorType>,
}

impl ImageHop {
    /// A request that matched an image route.
    pub fn new(in_progress: &prometheus::IntGauge) -> Self {
        Self {
            _in_progress: GaugeGuard::new(in_progress),
            forwarded: false,
            error: None,
        }
    }
}

impl RequestCtx {
    /// A fresh context; counts the request as in flight until dropped.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            started: Instant::now(),
            request_id: String::new(),
            kind: Kind::Edge,
            route: None,
            metrics: None,
            cache: None,
            cache_status: None,
            proxied: false,
            client_slot: None,
            status: None,
            error: None,
            span: Span::none(),
            upstream_span: Span::none(),
            _in_flight: GaugeGuard::new(&metrics.in_flight),
        }
    }

    /// The `site` label and log field (`"-"`: none matched).
    pub fn site_name(&self) -> &str {
        self.metrics.as_deref().map_or("-", RouteMetrics::site)
    }

    /// The `route` label and log field (`"-"`: none matched).
    pub fn route_name(&self) -> &str {
        self.metrics.as_deref().map_or("-", RouteMetrics::route)
    }

    /// The origin hop, on proxied requests.
    pub fn origin(&self) -> Option<&OriginHop> {
        match &self.kind {
            Kind::Proxy(hop) => Some(hop),
            _ => None,
        }
    }

    /// Whether the image service answers this request.
    pub fn to_image_service(&self) -> bool {
        matches!(&self.kind, Kind::Image(hop) if hop.forwarded)
    }

    /// The route's own bearer token is not passed on to the origin.
    pub fn strips_authorization(&self) -> bool {
        self.route
            .as_ref()
            .is_some_and(|r| !r.route.auth_tokens.is_empty())
    }
}

/// What the cache needs to know about a cacheable request.
pub struct CacheTarget {
    pub key: pingora::cache::CacheKey,
    pub policy: crate::config::CachePolicy,
    /// The key already separates the `Accept`-negotiated variants.
    pub key_covers_accept: bool,
}
