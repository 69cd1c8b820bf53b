//! What a finished request adds to the metrics (called once, from the logging phase).

use std::time::Duration;

use super::RequestCtx;
use crate::metrics::{ErrorType, Metrics};

/// What the logging phase knows about how the request ended.
pub(super) struct Finished {
    /// The status sent (0: none, the client went away first).
    pub status: u16,
    /// Header in to the end of the response.
    pub elapsed: Duration,
    /// Time spent waiting on pingora's cache lock, if the request waited at all.
    pub lock_wait: Option<Duration>,
}

/// Counts the request in imgforge's per-site families and, on image routes, in the
/// imgproxy-compatible ones.
pub(super) fn record(m: &Metrics, ctx: &RequestCtx, done: &Finished) {
    let site = ctx.site.as_deref().unwrap_or("-");
    let route = ctx.route.as_deref().unwrap_or("-");
    m.requests
        .with_label_values(&[site, route, &done.status.to_string()])
        .inc();
    m.duration
        .with_label_values(&[site, route])
        .observe(done.elapsed.as_secs_f64());
    if let Some(c) = ctx.cache_status {
        m.cache_requests.with_label_values(&[site, route, c]).inc();
    }
    if let Some(waited) = done.lock_wait {
        m.cache_lock_waits.with_label_values(&[site, route]).inc();
        m.cache_lock_wait_seconds
            .with_label_values(&[site, route])
            .observe(waited.as_secs_f64());
    }
    if ctx.image_request.is_some() {
        let error = ctx.image_error.or_else(|| client_gone(ctx, done));
        m.imgproxy.request_done(done.status, done.elapsed, error);
    }
}

/// An image request that ended without a status because the client went away: imgproxy
/// counts a response it could not write as an `IO` error.
fn client_gone(ctx: &RequestCtx, done: &Finished) -> Option<ErrorType> {
    (done.status == 0 && ctx.image_route.is_some()).then_some(ErrorType::Io)
}
