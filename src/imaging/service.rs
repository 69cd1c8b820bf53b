//! The internal image service (a Pingora `HttpServerApp` on a private Unix socket).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::StatusCode;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tracing::Instrument;

use super::answer::{Answer, common_headers};
use super::headers::{encode_path, if_none_match, variant_etag};
use super::render::render;
use super::source_cache::SourceCache;
use crate::config::RouteKind;
use crate::imgproxy::Source;
use crate::imgproxy::internal::{
    INTERNAL_ROUTE, INTERNAL_ROUTE_ID, INTERNAL_SITE, parse_image_url,
};
use crate::metrics::ErrorType;
use crate::source::{FetchError, FetchLimits, Fetcher, Target};
use crate::state::{Backend, Shared};
use crate::telemetry::{self, spans};
use crate::transform::Engine;

/// The image service application.
pub struct ImageService {
    shared: Arc<Shared>,
    fetcher: Fetcher,
    engine: Engine,
    /// Originals, when a cache is configured.
    sources: Option<SourceCache>,
}

impl ImageService {
    /// The service over the shared state, transforming with `engine`.
    pub fn new(shared: Arc<Shared>, engine: Engine) -> Self {
        Self {
            sources: shared.cache.map(|c| SourceCache::new(c.storage)),
            shared,
            fetcher: Fetcher::new(),
            engine,
        }
    }

    async fn handle(&self, session: &ServerSession) -> Answer {
        let req = session.req_header();
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(site_name), Some(prefix)) = (header(INTERNAL_SITE), header(INTERNAL_ROUTE))
        else {
            return Answer::error(400, "not an image request");
        };
        let request_id = header("x-request-id").unwrap_or("-").to_string();
        let runtime = self.shared.runtime.load_full();
        let Some(found) = runtime.route_for_image(header(INTERNAL_ROUTE_ID), site_name, prefix)
        else {
            return Answer::error(404, "unknown image route");
        };
        let RouteKind::Imgproxy(route) = &found.route.kind else {
            return Answer::error(404, "unknown image route");
        };
        let (route, cache_policy, site) = (route.as_ref(), found.route.cache.as_ref(), &found.site);
        // Verified again here (microseconds): the socket is private, but this keeps the service
        // correct on its own.
        let settings = &route.settings;
        let (image, info) = match parse_image_url(&req.uri, &req.headers, prefix, settings) {
            Ok(i) => i,
            Err(e) => {
                return Answer::error(e.status(), e.to_string()).failed(ErrorType::of_url(&e));
            }
        };
        let limits = FetchLimits {
            max_bytes: image
                .options
                .max_src_file_size
                .and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(runtime.config.transform.max_src_file_size),
            timeout: runtime.config.transform.timeout,
            max_redirects: 5,
        };
        let backend = found.backend.as_ref();
        let host = site.hosts.first().and_then(|h| match h {
            crate::config::HostPattern::Exact(n) => Some(n.as_str()),
            crate::config::HostPattern::Suffix(_) => None,
        });
        let encoded_local;
        let target = match (&image.source, backend) {
            (Source::Relative(path), Some(Backend::Pool(pool))) => {
                Target::Pool { pool, path, host }
            }
            (Source::Relative(path), Some(Backend::Root(root))) => Target::Local { root, path },
            (Source::Local(path), Some(Backend::Root(root))) => {
                encoded_local = encode_path(path);
                Target::Local {
                    root,
                    path: &encoded_local,
                }
            }
            (Source::Http(url), _) => Target::Url {
                url,
                policy: route.source_policy,
            },
            _ => return Answer::error(404, "source: no origin for this source"),
        };
        let remote = !matches!(target, Target::Local { .. });
        let source_url = image.source.to_url();
        // Timed and counted here, inside the closure: a source-cache hit downloads nothing, and
        // requests coalesced on one download count one origin failure.
        let metrics = &self.shared.metrics;
        let fetch = || {
            async {
                let started = std::time::Instant::now();
                let fetched = self.fetcher.fetch(target, limits, &request_id).await;
                metrics.imgproxy.downloaded(started.elapsed());
                if let Err(e) = &fetched
                    && let Some(kind) = e.upstream_kind()
                {
                    metrics
                        .upstream_errors
                        .with_label_values(&[site_name, prefix, kind])
                        .inc();
                }
                fetched
            }
            .instrument(spans::download(&source_url))
        };
        let fetched = match (&self.sources, cache_policy) {
            (Some(sources), Some(policy)) if remote => sources
                .get_or_fetch(site_name, &source_url, policy, fetch)
                .await
                .map(|(f, _hit)| f),
            _ => fetch().await,
        };
        // A cached original was checked against the limit of the request that fetched it.
        let fetched = fetched.and_then(|f| {
            if f.bytes.len() as u64 > limits.max_bytes {
                Err(FetchError::TooLarge {
                    limit: limits.max_bytes,
                })
            } else {
                Ok(f)
            }
        });
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                tracing::info!(request_id, error = %e, "source fetch failed");
                return fetch_error(&e);
            }
        };
        // The route's source types (`allowed_mime_types`), told by the bytes, not the origin's
        // Content-Type: 422, as for a type that cannot be decoded.
        if let Some(allowed) = &route.allowed_source_formats {
            let format = crate::transform::sniff(&fetched.bytes);
            if !format.is_some_and(|f| allowed.contains(&f)) {
                let named = format.map_or("unknown", |f| f.mime());
                tracing::info!(request_id, source_type = named, "source type not allowed");
                return Answer::error(422, format!("Source image type not allowed: {named}"))
                    .failed(ErrorType::Processing);
            }
        }
        let key = image.cache_key();
        let etag = variant_etag(fetched.etag.as_deref(), &fetched.bytes, &key);
        // RFC 9110: If-None-Match wins; If-Modified-Since only counts without it.
        let not_modified = match header("if-none-match") {
            Some(inm) => if_none_match(inm, &etag),
            None => not_modified_since(
                header("if-modified-since"),
                fetched.last_modified.as_deref(),
            ),
        };
        if not_modified {
            let mut a = Answer {
                status: 304,
                headers: vec![("etag", etag)],
                body: Bytes::new(),
                error: None,
            };
            common_headers(&mut a, &image, &fetched);
            return a;
        }
        render(&self.engine, &image, route, fetched, etag, info).await
    }
}

/// Whether the source has not changed since the client's copy (second precision, as HTTP dates).
fn not_modified_since(since: Option<&str>, last_modified: Option<&str>) -> bool {
    let parse = |v: Option<&str>| v.and_then(|v| httpdate::parse_http_date(v).ok());
    match (parse(since), parse(last_modified)) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

fn fetch_error(e: &FetchError) -> Answer {
    Answer::error(e.status(), e.message()).failed(ErrorType::of_fetch(e))
}

/// Served as Pingora's `HttpServerApp` rather than `ServeHttp`: `ServeHttp` wants the body as a
/// `Vec<u8>`, which would copy every image once more; here the answer's `Bytes` (for a
/// transform, the encoder's own buffer) are written as they are. The rest is what Pingora's
/// `ServeHttp` adapter does: read the request, keep-alive unless shutting down, write, finish.
#[async_trait]
impl HttpServerApp for ImageService {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "image service: cannot read the request");
                return None;
            }
        }
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        let (header, body) = self.respond(&session).await;
        if let Err(e) = session.write_response_header(Box::new(header)).await {
            tracing::debug!(error = %e, "image service: cannot write the response header");
            return None;
        }
        if !body.is_empty()
            && let Err(e) = session.write_response_body(body, true).await
        {
            tracing::debug!(error = %e, "image service: cannot write the response body");
            return None;
        }
        let persistent = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(stream) => stream.map(|s| ReusedHttpStream::from_reusable_stream(s, persistent)),
            Err(e) => {
                tracing::debug!(error = %e, "image service: cannot finish the response");
                None
            }
        }
    }
}

impl ImageService {
    /// The complete answer to one request: its header (with Content-Length) and body.
    async fn respond(&self, session: &ServerSession) -> (ResponseHeader, Bytes) {
        let span = request_span(session.req_header());
        let answer = self.handle(session).instrument(span.clone()).await;
        spans::record_status(&span, answer.status);
        if let Some(t) = answer.error {
            self.shared.metrics.imgproxy.error(t);
        }
        let mut resp = http::Response::new(());
        *resp.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        for (k, v) in answer.headers {
            if let Ok(v) = http::HeaderValue::from_str(&v) {
                h.append(k, v);
            }
        }
        h.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(answer.body.len()),
        );
        let header: ResponseHeader = resp.into_parts().0.into();
        (header, answer.body)
    }
}

/// The span of one image request, named by the edge's headers and continuing its trace.
fn request_span(req: &pingora::http::RequestHeader) -> tracing::Span {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let span = spans::image(
        header("x-request-id").unwrap_or("-"),
        header(INTERNAL_SITE).unwrap_or("-"),
        header(INTERNAL_ROUTE).unwrap_or("-"),
    );
    telemetry::continue_trace(&span, header("traceparent"));
    span
}

/// How long the edge waits for the image service: the download and the transform, plus slack.
pub fn upstream_timeout(transform_timeout: Duration) -> Duration {
    transform_timeout * 2 + Duration::from_secs(1)
}
