//! The public edge: Pingora's `ProxyHttp`, kept thin. Each phase delegates to a room:
//! routing picks site and route, `upstream` picks the server, `static_files` serves local roots,
//! [`error`] maps every failure to its status and body, [`scope`] keeps each request inside its
//! span.

pub mod connections;
mod ctx;
pub mod error;
pub mod forward;
mod health;
mod record;
pub mod scope;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::cache::{CacheKey, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType, Result};

pub use ctx::{CacheTarget, ImageHop, Kind, OriginHop, RequestCtx};
use error::{EdgeError, respond, respond_with};
pub use scope::Scoped;

use crate::cache::policy;
use crate::config::RouteKind;
use crate::config::schema::{HashOn, LbAlgorithm};
use crate::imaging::upstream_timeout as imaging_timeout;
use crate::imgproxy::RouteSettings;
use crate::imgproxy::internal::{
    INTERNAL_ROUTE, INTERNAL_ROUTE_ID, INTERNAL_SITE, RouteToken, parse_image_url,
};
use crate::metrics::ErrorType as ImageError;
use crate::protect::{auth, client_ip, ratelimit, request_size};
use crate::routing::RouteMatch;
use crate::state::{Backend, RouteRuntime, Runtime, Shared};
use crate::telemetry::{self, AccessRecord, spans};

/// The gateway's proxy logic.
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// A gateway over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        err: EdgeError,
    ) -> Result<bool> {
        ctx.status = Some(err.status());
        if let EdgeError::Url(e) = &err {
            ctx.error = Some(e.to_string());
        }
        if let Kind::Image(hop) = &mut ctx.kind {
            hop.error = match &err {
                EdgeError::Url(e) => Some(ImageError::of_url(e)),
                EdgeError::Unauthorized => Some(ImageError::Security),
                _ => None,
            };
        }
        let mut headers = err.headers();
        if let Some(csp) = image_csp(ctx).and_then(|v| v.to_str().ok()) {
            headers.push(("Content-Security-Policy", csp.to_string()));
        }
        respond_with(
            session,
            err.status(),
            &err.message(),
            &ctx.request_id,
            &headers,
        )
        .await?;
        Ok(true)
    }

    /// Applies the per-client concurrency cap, the global cap and the route's per-client rate
    /// limit; `Some` when refused. Exempt clients skip all three.
    async fn admit(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        runtime: &Runtime,
        route: &RouteRuntime,
    ) -> Option<EdgeError> {
        let site = route.site.name.as_str();
        let server = &runtime.config.server;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())?;
        let xff = session
            .req_header()
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let client = client_ip::client_ip(peer, xff, &server.trusted_proxies);
        if client_ip::any_contains(&server.rate_limit_exempt, client) {
            return None;
        }
        if let Some(per_client) = &self.shared.per_client {
            match per_client.acquire(client) {
                Some(slot) => ctx.client_slot = Some(slot),
                None => {
                    self.shared
                        .metrics
                        .rate_limited
                        .with_label_values(&[site, "concurrency"])
                        .inc();
                    return Some(EdgeError::TooManyConcurrent);
                }
            }
        }
        let now = ratelimit::now_nanos();
        let fleet = self.shared.fleet.as_ref();
        if let Some(global) = &runtime.global_limiter {
            let d = match fleet {
                Some(f) => f.rate_limit("*", None, &(), global, now).await,
                None => global.check(&(), now),
            };
            if !d.allowed {
                // Refusals by the global cap are rare enough for a label lookup.
                self.shared
                    .metrics
                    .rate_limited
                    .with_label_values(&[site, "*"])
                    .inc();
                return Some(EdgeError::RateLimited(d));
            }
        }
        let limiter = route.limiter.as_ref()?;
        let d = match fleet {
            Some(f) => {
                f.rate_limit(&route.fleet_scope, Some(client), &client, limiter, now)
                    .await
            }
            None => limiter.check(&client, now),
        };
        if d.allowed {
            None
        } else {
            route.metrics.rate_limited();
            Some(EdgeError::RateLimited(d))
        }
    }

    /// An `imgproxy` route: the URL is parsed and its signature verified before anything else
    /// is touched.
    async fn image_route(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        settings: &RouteSettings,
        route: &RouteRuntime,
    ) -> Result<bool> {
        let site = route.site.name.as_str();
        let route = &route.route;
        match parse_image_url(
            &session.req_header().uri,
            &session.req_header().headers,
            &route.prefix,
            settings,
        ) {
            Err(e) => self.answer(session, ctx, EdgeError::Url(e)).await,
            Ok((image, info)) => {
                if let Kind::Image(hop) = &mut ctx.kind {
                    hop.forwarded = true;
                }
                if let Some(policy) = &route.cache {
                    let generation = self.shared.generations.get(site, &image.source.to_url());
                    let variant = if info {
                        format!("info {}", image.canonical)
                    } else {
                        image.cache_key()
                    };
                    ctx.cache = Some(CacheTarget {
                        key: policy::image_key(site, &route.prefix, generation, &variant),
                        policy: policy.clone(),
                        key_covers_accept: true,
                    });
                }
                Ok(false)
            }
        }
    }
}

/// The `Content-Security-Policy` of an image route's answers (`None`: other routes, or none set).
fn image_csp(ctx: &RequestCtx) -> Option<&http::HeaderValue> {
    match (&ctx.kind, &ctx.route) {
        (Kind::Image(_), Some(route)) => match &route.route.kind {
            RouteKind::Imgproxy(image) => image.content_security_policy.as_ref(),
            RouteKind::Proxy => None,
        },
        _ => None,
    }
}

/// W3C trace context header (edge → image service).
const TRACEPARENT: &str = "traceparent";

fn host_of(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(&self.shared.metrics)
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if health::answered(session, &self.shared).await? {
            return Ok(true);
        }
        let req = session.req_header();
        ctx.request_id = forward::request_id(req.headers.get("x-request-id").map(|v| v.as_bytes()));
        let runtime = self.shared.runtime.load_full();
        let server = &runtime.config.server;
        if let Some(over) = request_size::check(
            req.raw_path().len(),
            request_size::header_bytes(&req.headers),
            server.max_url_length,
            server.max_header_size,
        ) {
            // A client sending these is broken or hostile: no further requests on its connection.
            session.set_keepalive(None);
            let err = match over {
                request_size::Oversized::Url => EdgeError::UrlTooLong,
                _ => EdgeError::HeadersTooLarge,
            };
            return self.answer(session, ctx, err).await;
        }
        let req = session.req_header();
        let path = req.uri.path().to_string();
        // What the request is gets decided here, once: the route of this runtime snapshot, the
        // handles it is counted with, and its kind.
        let (route, metrics, refusal) = match runtime.router.route(host_of(req), &path) {
            RouteMatch::UnknownHost => (
                None,
                runtime.unmatched.clone(),
                Some(EdgeError::UnknownHost),
            ),
            RouteMatch::NoRoute { index, .. } => (
                None,
                runtime.no_route(index).clone(),
                Some(EdgeError::NoRoute),
            ),
            RouteMatch::Matched { id, .. } => match runtime.route(id) {
                Some(route) => (Some(route.clone()), route.metrics.clone(), None),
                None => (None, runtime.unmatched.clone(), Some(EdgeError::Internal)),
            },
        };
        // The request's span starts here, the first phase, with every field it names known:
        // fields given at creation cost far less than recorded one by one.
        ctx.span = spans::request(
            &ctx.request_id,
            req.method.as_str(),
            &path,
            metrics.site(),
            metrics.route(),
        );
        scope::adopt(&ctx.span);
        ctx.metrics = Some(metrics);
        let Some(route) = route else {
            let err = refusal.unwrap_or(EdgeError::Internal);
            return self.answer(session, ctx, err).await;
        };
        ctx.route = Some(route.clone());
        if let RouteKind::Imgproxy(_) = &route.route.kind {
            ctx.kind = Kind::Image(ImageHop::new(
                &self.shared.metrics.imgproxy.requests_in_progress,
            ));
        }
        if let Some(limited) = self.admit(session, ctx, &runtime, &route).await {
            return self.answer(session, ctx, limited).await;
        }
        if !route.route.auth_tokens.is_empty() {
            let tokens: Vec<&str> = route.route.auth_tokens.iter().map(String::as_str).collect();
            if !auth::bearer_matches(&session.req_header().headers, &tokens) {
                return self.answer(session, ctx, EdgeError::Unauthorized).await;
            }
        }
        match &route.route.kind {
            RouteKind::Proxy => {}
            RouteKind::Imgproxy(image) => {
                let settings = &image.settings;
                return self.image_route(session, ctx, settings, &route).await;
            }
        }
        match &route.backend {
            Some(Backend::Pool(pool)) => {
                ctx.kind = Kind::Proxy(OriginHop {
                    pool: pool.clone(),
                    tried: Vec::new(),
                    server: None,
                });
                // Requests with credentials are never shared through the cache.
                let req = session.req_header();
                if let Some(policy) = &route.route.cache
                    && !req.headers.contains_key(http::header::AUTHORIZATION)
                {
                    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
                    ctx.cache = Some(CacheTarget {
                        key: policy::proxy_key(
                            &route.site.name,
                            host_of(req).unwrap_or(""),
                            target,
                        ),
                        policy: policy.clone(),
                        key_covers_accept: false,
                    });
                }
                Ok(false)
            }
            Some(Backend::Root(root)) => {
                let extra = [(
                    http::HeaderName::from_static("x-request-id"),
                    ctx.request_id.clone(),
                )];
                let served = root
                    .serve(session, &path, &extra)
                    .await
                    .map_err(|e| Error::because(ErrorType::WriteError, "serving local root", e))?;
                ctx.status = Some(served.status);
                Ok(true)
            }
            None => self.answer(session, ctx, EdgeError::Internal).await,
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        ctx.proxied = true;
        if ctx.to_image_service() {
            ctx.upstream_span = spans::upstream("image_service");
            let socket = self.shared.image_socket.to_string_lossy();
            let mut peer = HttpPeer::new_uds(&socket, false, String::new())?;
            let timeout = self.shared.runtime.load().config.transform.timeout;
            peer.options.read_timeout = Some(imaging_timeout(timeout));
            peer.options.connection_timeout = Some(std::time::Duration::from_secs(1));
            return Ok(Box::new(peer));
        }
        let Kind::Proxy(hop) = &mut ctx.kind else {
            return Error::e_explain(ErrorType::InternalError, "no pool for proxied request");
        };
        let pool = hop.pool.clone();
        let req = session.req_header();
        // Round robin ignores the key: build it only for the consistent hash.
        let key: Vec<u8> = match pool.settings().hash_on {
            _ if pool.settings().lb == LbAlgorithm::RoundRobin => Vec::new(),
            HashOn::Path => req.uri.path().as_bytes().to_vec(),
            HashOn::Host => host_of(req).unwrap_or_default().as_bytes().to_vec(),
            HashOn::ClientIp => session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_string().into_bytes())
                .unwrap_or_default(),
        };
        let Some(addr) = pool.select(&key, &hop.tried) else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no origin server available");
        };
        hop.tried.push(addr);
        hop.server = Some(addr);
        // A retry replaces the failed attempt's span (closed with its error).
        ctx.upstream_span = spans::upstream("origin");
        ctx.upstream_span
            .record("server.address", tracing::field::display(addr));
        Ok(Box::new(pool.peer(addr)))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.upstream_span.record("otel.status_code", "ERROR");
        tracing::warn!(server = %peer.address(), error = %e, "cannot connect to the upstream");
        if let Some(hop) = ctx.origin() {
            let pool = &hop.pool;
            self.shared
                .metrics
                .upstream_errors
                .with_label_values(&[pool.site(), ctx.route_name(), EdgeError::upstream_kind(&e)])
                .inc();
            let others = pool.settings().servers.len() > hop.tried.len();
            if others && hop.tried.len() <= pool.settings().retries {
                e.set_retry(true);
            }
        }
        e
    }

    fn request_cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        if let (Some(cache), Some(_)) = (&self.shared.cache, &ctx.cache)
            && pingora::cache::filters::request_cacheable(session.req_header())
        {
            session
                .cache
                .enable(cache.storage, None, None, Some(cache.lock), None);
            session
                .cache
                .set_max_file_size_bytes(cache.storage.max_entry_size());
        }
        Ok(())
    }

    fn cache_key_callback(&self, _session: &Session, ctx: &mut RequestCtx) -> Result<CacheKey> {
        match &ctx.cache {
            Some(t) => Ok(t.key.clone()),
            None => Error::e_explain(ErrorType::InternalError, "cache enabled without a key"),
        }
    }

    fn response_cache_filter(
        &self,
        _session: &Session,
        resp: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        Ok(match &ctx.cache {
            Some(t) => policy::decide(
                resp,
                &t.policy,
                t.key_covers_accept,
                std::time::SystemTime::now(),
            ),
            None => RespCacheable::Uncacheable(pingora::cache::NoCacheReason::NeverEnabled),
        })
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let original_host = host_of(session.req_header()).map(str::to_string);
        let xff = forward::forwarded_for(
            upstream
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok()),
            client_ip,
        );
        if let Some(xff) = xff {
            upstream.insert_header("X-Forwarded-For", xff)?;
        }
        upstream.insert_header("X-Forwarded-Proto", if tls { "https" } else { "http" })?;
        if let Some(h) = &original_host {
            upstream.insert_header("X-Forwarded-Host", h.as_str())?;
        }
        upstream.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        // Trace context only on the private hop to the image service (a client's copy is
        // dropped there); proxied requests keep whatever the client sent.
        if ctx.to_image_service() {
            upstream.remove_header(TRACEPARENT);
            if let Some(tp) = telemetry::traceparent(&ctx.upstream_span) {
                upstream.insert_header(TRACEPARENT, tp)?;
            }
        }
        if ctx.strips_authorization() {
            upstream.remove_header(&http::header::AUTHORIZATION);
        }
        // Internal headers are only ever set here: a client's copy is dropped.
        upstream.remove_header(INTERNAL_SITE);
        upstream.remove_header(INTERNAL_ROUTE);
        upstream.remove_header(INTERNAL_ROUTE_ID);
        if ctx.to_image_service()
            && let Some(route) = &ctx.route
        {
            upstream.insert_header(INTERNAL_SITE, route.site.name.as_str())?;
            upstream.insert_header(INTERNAL_ROUTE, route.route.prefix.as_str())?;
            upstream.insert_header(
                INTERNAL_ROUTE_ID,
                RouteToken {
                    epoch: route.epoch,
                    site: route.id.site,
                    route: route.id.route,
                }
                .to_string(),
            )?;
        }
        if let Some(hop) = ctx.origin() {
            let s = hop.pool.settings();
            if let Some(h) = &s.host_header {
                upstream.insert_header(http::header::HOST, h.as_str())?;
            }
            for (k, v) in &s.request_headers {
                upstream.insert_header(k.clone(), v.clone())?;
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        spans::record_status(&ctx.upstream_span, resp.status.as_u16());
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if end_of_stream {
            ctx.upstream_span = tracing::Span::none();
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        resp.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        ctx.status = Some(resp.status.as_u16());
        // Image routes answer with the route's Content-Security-Policy (imgproxy's by default),
        // from the cache as from the image service.
        if let Some(csp) = image_csp(ctx) {
            resp.insert_header(http::header::CONTENT_SECURITY_POLICY, csp.clone())?;
        }
        if ctx.cache.is_some() && self.shared.cache.is_some() {
            let status = policy::status(session.cache.phase(), ctx.proxied);
            ctx.cache_status = Some(status);
            if status == "STALE" && ctx.proxied {
                // Served because the origin failed: Pingora will not reuse this connection, so
                // the client must not either.
                session.set_keepalive(None);
            }
            if self.shared.runtime.load().config.cache.status_header {
                resp.insert_header("X-Cache-Status", status)?;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = EdgeError::from_proxy_error(e);
        if let (Some(hop), Some(err)) = (ctx.origin(), &err) {
            // Connect failures were counted in fail_to_connect already.
            if matches!(err, EdgeError::UpstreamTimeout | EdgeError::Upstream)
                && !matches!(
                    e.etype(),
                    ErrorType::ConnectRefused | ErrorType::ConnectTimedout
                )
            {
                self.shared
                    .metrics
                    .upstream_errors
                    .with_label_values(&[
                        hop.pool.site(),
                        ctx.route_name(),
                        EdgeError::upstream_kind(e),
                    ])
                    .inc();
            }
        }
        // On image routes the upstream is the image service: a failure of that hop is
        // imgproxy's `timeout` or `IO` (the service's own errors arrive as statuses).
        if let (Kind::Image(hop), Some(err)) = (&mut ctx.kind, &err)
            && hop.forwarded
        {
            hop.error = Some(match err {
                EdgeError::UpstreamTimeout => ImageError::Timeout,
                _ => ImageError::Io,
            });
        }
        let code = match &err {
            Some(err) => {
                // Pingora drops the connection after a proxy failure: say so, or a client
                // reusing it would see a reset.
                session.set_keepalive(None);
                if let Err(write_err) =
                    respond(session, err.status(), &err.message(), &ctx.request_id).await
                {
                    tracing::debug!(error = %write_err, "could not write the error response");
                }
                err.status()
            }
            None => 0,
        };
        if code > 0 && ctx.status.is_none_or(|s| s < 400) {
            ctx.status = Some(code);
        }
        ctx.error = Some(e.to_string());
        if code >= 500 {
            ctx.upstream_span.record("otel.status_code", "ERROR");
            tracing::warn!(status = code, error = %e, "proxying failed");
        } else if code > 0 {
            // The client's fault (a malformed request body, …): not worth a warning.
            tracing::info!(status = code, error = %e, "proxying failed");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // Every failure is already in the access line with its error text.
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.status)
            .unwrap_or(0);
        ctx.upstream_span = tracing::Span::none();
        spans::record_status(&ctx.span, status);
        if let Some(c) = ctx.cache_status {
            ctx.span.record("cache", c);
        }
        // A request answered before routing (oversized URL or headers) is counted as one that
        // matched no site, as every request is.
        if ctx.metrics.is_none() {
            ctx.metrics = Some(self.shared.runtime.load().unmatched.clone());
        }
        let elapsed = ctx.started.elapsed();
        record::record(
            &self.shared.metrics,
            ctx,
            &record::Finished {
                status,
                elapsed,
                lock_wait: session.cache.lock_duration(),
            },
        );
        if self.shared.runtime.load().config.log.access_log {
            let req = session.req_header();
            telemetry::access(&AccessRecord {
                request_id: &ctx.request_id,
                site: ctx.site_name(),
                route: ctx.route_name(),
                method: req.method.as_str(),
                path: req.uri.path(),
                status,
                bytes: session.body_bytes_sent(),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                upstream: ctx.origin().and_then(|h| h.server).map(|a| a.to_string()),
                cache: ctx.cache_status,
                client: session.client_addr().map(|a| a.to_string()),
                error: ctx.error.clone().or_else(|| e.map(|e| e.to_string())),
            });
        }
    }
}
