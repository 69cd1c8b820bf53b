//! What a finished request adds to the metrics (called once, from the logging phase).

use std::time::Duration;

use super::{Kind, RequestCtx};
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
    if let Some(route) = &ctx.metrics {
        route.request(done.status);
        route.duration(done.elapsed.as_secs_f64());
        if let Some(c) = ctx.cache_status {
            route.cache_status(c);
        }
        if let Some(waited) = done.lock_wait {
            route.lock_wait(waited.as_secs_f64());
        }
    }
    if let Kind::Image(hop) = &ctx.kind {
        // An image request that ended without a status because the client went away: imgproxy
        // counts a response it could not write as an `IO` error.
        let gone = (done.status == 0 && hop.forwarded).then_some(ErrorType::Io);
        m.imgproxy
            .request_done(done.status, done.elapsed, hop.error.or(gone));
    }
}
