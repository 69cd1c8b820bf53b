//! The spans of a request, in one place: names, levels and fields (the tree is drawn in
//! docs/operations.md, "Tracing").
//!
//! A span's level decides when it exists, never what is printed. The two spans that carry the
//! request id (`request` at the edge, `image` in the image service) are `ERROR` so that they
//! exist whenever anything at all is logged: a `warn` line must carry the id too. The phase
//! spans are `DEBUG`: with logs at `info` and no OTLP export they are disabled at their call
//! site (an atomic load and a branch) and cost nothing else.
//!
//! Field names follow OpenTelemetry's semantic conventions where one exists (`url.path`,
//! `http.request.method`, `http.response.status_code`, `server.address`); `otel.kind` and
//! `otel.status_code` are read by the OTLP export only.

use tracing::Span;
use tracing::field::Empty;

/// The edge's span for one request: the root of its trace. `"-"` for a site or route not
/// matched; the status is recorded when the request ends.
pub fn request(request_id: &str, method: &str, path: &str, site: &str, route: &str) -> Span {
    tracing::error_span!(
        parent: None,
        "request",
        request_id,
        site,
        route,
        http.request.method = method,
        url.path = path,
        http.response.status_code = Empty,
        cache = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
    )
}

/// The edge's cache storage lookup (memory, then disk): defined by the cache crate.
pub use imgforge_cache::spans::cache_lookup;

/// The edge's exchange with an upstream: `"origin"` or `"image_service"`, from the choice of the
/// server to the end of its response.
pub fn upstream(kind: &'static str) -> Span {
    tracing::debug_span!(
        "upstream",
        upstream = kind,
        server.address = Empty,
        http.response.status_code = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
    )
}

/// The image service's span for one request, a child of the edge's `upstream` span when the
/// edge sent its trace context (see [`super::continue_trace`]).
pub fn image(request_id: &str, site: &str, route: &str) -> Span {
    tracing::error_span!(
        parent: None,
        "image",
        request_id,
        site,
        route,
        format = Empty,
        width = Empty,
        height = Empty,
        http.response.status_code = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
    )
}

/// Fetching a source image (origin pool, local root or absolute URL); not made for a source
/// found in the source cache.
pub fn download(source: &str) -> Span {
    tracing::debug_span!("download", source, otel.kind = "client")
}

// The transform engine's spans (queue, processing, encode) are defined by the transform crate,
// next to the code that opens them: `imgforge_transform::spans`.

/// Records a response status on `span`; 5xx marks it failed for the trace.
pub fn record_status(span: &Span, status: u16) {
    // As i64: the OTLP layer exports unsigned values as strings.
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}
