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

pub use ctx::{CacheTarget, RequestCtx};
use error::{EdgeError, respond, respond_with};
pub use scope::Scoped;

use crate::cache::policy;
use crate::config::schema::{HashOn, LbAlgorithm};
use crate::config::{Route, RouteKind};
use crate::imaging::upstream_timeout as imaging_timeout;
use crate::imgproxy::RouteSettings;
use crate::imgproxy::internal::{INTERNAL_ROUTE, INTERNAL_SITE, parse_image_url};
use crate::metrics::{ErrorType as ImageError, GaugeGuard};
use crate::protect::{auth, client_ip, ratelimit, request_size};
use crate::routing::RouteMatch;
use crate::state::{Backend, Runtime, Shared};
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
        if ctx.image_request.is_some() {
            ctx.image_error = match &err {
                EdgeError::Url(e) => Some(ImageError::of_url(e)),
                EdgeError::Unauthorized => Some(ImageError::Security),
                _ => None,
            };
        }
        respond_with(
            session,
            err.status(),
            &err.message(),
            &ctx.request_id,
            &err.headers(),
        )
        .await?;
        Ok(true)
    }

    /// Applies the global cap and the route's per-client limit; `Some` when refused.
    /// Applies the per-client concurrency cap, the global cap and the route's per-client rate
    /// limit; `Some` when refused. Exempt clients skip all three.
    fn admit(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        runtime: &Runtime,
        site: &str,
        prefix: &str,
    ) -> Option<EdgeError> {
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
        let refused = |route: &str, d: ratelimit::Decision| {
            self.shared
                .metrics
                .rate_limited
                .with_label_values(&[site, route])
                .inc();
            Some(EdgeError::RateLimited(d))
        };
        if let Some(global) = &runtime.global_limiter {
            let d = global.check(&(), now);
            if !d.allowed {
                return refused("*", d);
            }
        }
        let limiter = runtime
            .limiters
            .get(&(site.to_string(), prefix.to_string()))?;
        let d = limiter.check(&client, now);
        if d.allowed { None } else { refused(prefix, d) }
    }

    /// An `imgproxy` route: the URL is parsed and its signature verified before anything else
    /// is touched.
    async fn image_route(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        settings: &RouteSettings,
        route: &Route,
    ) -> Result<bool> {
        match parse_image_url(
            &session.req_header().uri,
            &session.req_header().headers,
            &route.prefix,
            settings,
        ) {
            Err(e) => self.answer(session, ctx, EdgeError::Url(e)).await,
            Ok((image, info)) => {
                ctx.image_route = Some(route.prefix.clone());
                if let Some(policy) = &route.cache {
                    let site = ctx.site.as_deref().unwrap_or("");
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
        let routed = runtime.router.route(host_of(req), &path);
        let (site_name, prefix) = match &routed {
            RouteMatch::UnknownHost => ("-", "-"),
            RouteMatch::NoRoute { site } => (site.name.as_str(), "-"),
            RouteMatch::Matched { site, route } => (site.name.as_str(), route.prefix.as_str()),
        };
        // The request's span starts here, the first phase, with every field it names known:
        // fields given at creation cost far less than recorded one by one.
        ctx.span = spans::request(
            &ctx.request_id,
            req.method.as_str(),
            &path,
            site_name,
            prefix,
        );
        scope::adopt(&ctx.span);
        let (site, route) = match routed {
            RouteMatch::UnknownHost => {
                return self.answer(session, ctx, EdgeError::UnknownHost).await;
            }
            RouteMatch::NoRoute { site } => {
                ctx.site = Some(site.name.clone());
                return self.answer(session, ctx, EdgeError::NoRoute).await;
            }
            // Borrowed from this request's snapshot of the runtime: no per-request copy of the
            // route (an image route carries its keys, presets and settings).
            RouteMatch::Matched { site, route } => (site.clone(), route),
        };
        ctx.site = Some(site.name.clone());
        ctx.route = Some(route.prefix.clone());
        if matches!(route.kind, RouteKind::Imgproxy(_)) {
            ctx.image_request = Some(GaugeGuard::new(
                &self.shared.metrics.imgproxy.requests_in_progress,
            ));
        }
        if let Some(limited) = self.admit(session, ctx, &runtime, &site.name, &route.prefix) {
            return self.answer(session, ctx, limited).await;
        }
        if !route.auth_tokens.is_empty() {
            let tokens: Vec<&str> = route.auth_tokens.iter().map(String::as_str).collect();
            if !auth::bearer_matches(&session.req_header().headers, &tokens) {
                return self.answer(session, ctx, EdgeError::Unauthorized).await;
            }
            ctx.strip_authorization = true;
        }
        match &route.kind {
            RouteKind::Proxy => {}
            RouteKind::Imgproxy(image) => {
                let settings = &image.settings;
                return self.image_route(session, ctx, settings, route).await;
            }
        }
        match runtime.backends.get(&site.name) {
            Some(Backend::Pool(pool)) => {
                ctx.pool = Some(pool.clone());
                // Requests with credentials are never shared through the cache.
                let req = session.req_header();
                if let Some(policy) = &route.cache
                    && !req.headers.contains_key(http::header::AUTHORIZATION)
                {
                    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
                    ctx.cache = Some(CacheTarget {
                        key: policy::proxy_key(&site.name, host_of(req).unwrap_or(""), target),
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
        if ctx.image_route.is_some() {
            ctx.upstream_span = spans::upstream("image_service");
            let socket = self.shared.image_socket.to_string_lossy();
            let mut peer = HttpPeer::new_uds(&socket, false, String::new())?;
            let timeout = self.shared.runtime.load().config.transform.timeout;
            peer.options.read_timeout = Some(imaging_timeout(timeout));
            peer.options.connection_timeout = Some(std::time::Duration::from_secs(1));
            return Ok(Box::new(peer));
        }
        let Some(pool) = ctx.pool.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no pool for proxied request");
        };
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
        let Some(addr) = pool.select(&key, &ctx.tried) else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no origin server available");
        };
        ctx.tried.push(addr);
        ctx.upstream = Some(addr);
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
        if let Some(pool) = &ctx.pool {
            let route = ctx.route.as_deref().unwrap_or("-");
            self.shared
                .metrics
                .upstream_errors
                .with_label_values(&[pool.site(), route, EdgeError::upstream_kind(&e)])
                .inc();
            let others = pool.settings().servers.len() > ctx.tried.len();
            if others && ctx.tried.len() <= pool.settings().retries {
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
        if ctx.image_route.is_some() {
            upstream.remove_header(TRACEPARENT);
            if let Some(tp) = telemetry::traceparent(&ctx.upstream_span) {
                upstream.insert_header(TRACEPARENT, tp)?;
            }
        }
        if ctx.strip_authorization {
            upstream.remove_header(&http::header::AUTHORIZATION);
        }
        // Internal headers are only ever set here: a client's copy is dropped.
        upstream.remove_header(INTERNAL_SITE);
        upstream.remove_header(INTERNAL_ROUTE);
        if let Some(prefix) = &ctx.image_route {
            upstream.insert_header(INTERNAL_SITE, ctx.site.clone().unwrap_or_default())?;
            upstream.insert_header(INTERNAL_ROUTE, prefix.as_str())?;
        }
        if let Some(pool) = &ctx.pool {
            let s = pool.settings();
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
        if let (Some(pool), Some(err)) = (&ctx.pool, &err) {
            // Connect failures were counted in fail_to_connect already.
            if matches!(err, EdgeError::UpstreamTimeout | EdgeError::Upstream)
                && !matches!(
                    e.etype(),
                    ErrorType::ConnectRefused | ErrorType::ConnectTimedout
                )
            {
                let route = ctx.route.as_deref().unwrap_or("-");
                self.shared
                    .metrics
                    .upstream_errors
                    .with_label_values(&[pool.site(), route, EdgeError::upstream_kind(e)])
                    .inc();
            }
        }
        // On image routes the upstream is the image service: a failure of that hop is
        // imgproxy's `timeout` or `IO` (the service's own errors arrive as statuses).
        if ctx.image_route.is_some()
            && let Some(err) = &err
        {
            ctx.image_error = Some(match err {
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
                site: ctx.site.as_deref().unwrap_or("-"),
                route: ctx.route.as_deref().unwrap_or("-"),
                method: req.method.as_str(),
                path: req.uri.path(),
                status,
                bytes: session.body_bytes_sent(),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                upstream: ctx.upstream.map(|a| a.to_string()),
                cache: ctx.cache_status,
                client: session.client_addr().map(|a| a.to_string()),
                error: ctx.error.clone().or_else(|| e.map(|e| e.to_string())),
            });
        }
    }
}
