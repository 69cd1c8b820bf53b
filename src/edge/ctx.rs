//! Per-request context carried through the proxy phases.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::Span;

use crate::metrics::{ErrorType, GaugeGuard, Metrics};
use crate::upstream::Pool;

/// What the phases learn about one request.
pub struct RequestCtx {
    pub started: Instant,
    pub request_id: String,
    pub site: Option<String>,
    pub route: Option<String>,
    pub pool: Option<Arc<Pool>>,
    /// Servers already tried (a failed connect retries on another one).
    pub tried: Vec<SocketAddr>,
    pub upstream: Option<SocketAddr>,
    /// Set on image routes: the route prefix whose image service answers.
    pub image_route: Option<String>,
    /// Set as soon as the request matched an image route (whatever happens next): counts it
    /// in imgproxy's `requests_in_progress` until the request ends.
    pub image_request: Option<GaugeGuard>,
    /// imgproxy's error type of a failure the edge itself answered on an image route.
    pub image_error: Option<ErrorType>,
    /// Set when this request may be served from / stored in the cache.
    pub cache: Option<CacheTarget>,
    /// A slot of the per-client concurrency cap, freed when the request ends.
    pub client_slot: Option<crate::protect::concurrency::Slot>,
    /// The route's own bearer token is not passed on to the origin.
    pub strip_authorization: bool,
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

impl RequestCtx {
    /// A fresh context; counts the request as in flight until dropped.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            started: Instant::now(),
            request_id: String::new(),
            site: None,
            route: None,
            pool: None,
            tried: Vec::new(),
            upstream: None,
            image_route: None,
            image_request: None,
            image_error: None,
            cache: None,
            cache_status: None,
            proxied: false,
            strip_authorization: false,
            client_slot: None,
            status: None,
            error: None,
            span: Span::none(),
            upstream_span: Span::none(),
            _in_flight: GaugeGuard::new(&metrics.in_flight),
        }
    }
}

/// What the cache needs to know about a cacheable request.
pub struct CacheTarget {
    pub key: pingora::cache::CacheKey,
    pub policy: crate::config::CachePolicy,
    /// The key already separates the `Accept`-negotiated variants.
    pub key_covers_accept: bool,
}
