//! Observability: typed events for the gateway's metrics ([`Observer`]) and the coordinator's own
//! counters ([`Stats`], read through [`crate::Coordinator::stats`] and `/status`).
//!
//! The crate has no metrics dependency: the gateway implements [`Observer`] with its Prometheus
//! collectors (one `observe()`/`inc()` per event, labels from the `as_str` methods), or reads a
//! [`Stats`] snapshot at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::BreakerState;
use crate::error::ErrorKind;
use crate::events::PurgeKind;

/// Which operation a Redis call served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// A shared rate-limit decision (one script call).
    RateLimit,
    /// Taking a fill lock.
    LockAcquire,
    /// Releasing a fill lock.
    LockRelease,
    /// One poll while waiting for another node's fill lock.
    LockWait,
    /// Publishing a purge.
    PurgePublish,
    /// The purge listener reading state, log or generations.
    PurgeSync,
}

impl Op {
    /// Label for metrics (`rate_limit`, `lock_acquire`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::RateLimit => "rate_limit",
            Op::LockAcquire => "lock_acquire",
            Op::LockRelease => "lock_release",
            Op::LockWait => "lock_wait",
            Op::PurgePublish => "purge_publish",
            Op::PurgeSync => "purge_sync",
        }
    }
}

/// Why a rate-limit decision fell back to the `on_error` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// Redis did not answer within the budget.
    Timeout,
    /// Connection or Redis error.
    Error,
    /// The circuit breaker is open: Redis was not asked.
    BreakerOpen,
}

impl FallbackReason {
    /// Label for metrics (`timeout`, `error`, `breaker_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Timeout => "timeout",
            FallbackReason::Error => "error",
            FallbackReason::BreakerOpen => "breaker_open",
        }
    }

    pub(crate) fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Timeout => FallbackReason::Timeout,
            ErrorKind::BreakerOpen => FallbackReason::BreakerOpen,
            _ => FallbackReason::Error,
        }
    }
}

/// Receives what the coordinator does, for metrics. Every method defaults to doing nothing;
/// they are called on the request path, so they must be cheap and must not block.
pub trait Observer: Send + Sync + 'static {
    /// One Redis call ended after `elapsed`: `Ok(())`, or the kind of failure (a timeout is
    /// reported with `elapsed` = the budget). Calls skipped by the open breaker are not calls.
    fn call(&self, op: Op, elapsed: Duration, outcome: Result<(), ErrorKind>) {
        let _ = (op, elapsed, outcome);
    }

    /// A rate-limit decision fell back to the `on_error` policy.
    fn fallback(&self, reason: FallbackReason) {
        let _ = reason;
    }

    /// A refused client was refused again from the local deny cache (no Redis call).
    fn deny_cache_hit(&self) {}

    /// The circuit breaker changed state.
    fn breaker(&self, state: BreakerState) {
        let _ = state;
    }

    /// This node published a purge.
    fn purge_sent(&self, kind: PurgeKind) {
        let _ = kind;
    }

    /// The purge listener delivered a purge made by any node (this one included). Resyncs are
    /// reported with [`PurgeKind::Resync`].
    fn purge_received(&self, kind: PurgeKind) {
        let _ = kind;
    }
}

/// An observer that ignores everything (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Upper bounds (seconds) of the call-latency histogram buckets; the last bucket is +Inf.
pub const LATENCY_BOUNDS: [f64; 11] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// Counters kept by every coordinator (cheap atomics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    errors: [AtomicU64; 4],
    fallbacks: [AtomicU64; 3],
    deny_cache_hits: AtomicU64,
    purge_sent: AtomicU64,
    purge_received: AtomicU64,
    purge_resyncs: AtomicU64,
    locks_acquired: AtomicU64,
    locks_busy: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    latency_sum_nanos: AtomicU64,
}

fn error_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Timeout => 0,
        ErrorKind::BreakerOpen => 1,
        ErrorKind::Connection => 2,
        _ => 3,
    }
}

impl Counters {
    pub(crate) fn call(&self, elapsed: Duration, outcome: Result<(), ErrorKind>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(kind) = outcome {
            self.errors[error_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn fallback(&self, reason: FallbackReason) {
        let i = match reason {
            FallbackReason::Timeout => 0,
            FallbackReason::Error => 1,
            FallbackReason::BreakerOpen => 2,
        };
        self.fallbacks[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn deny_cache_hit(&self) {
        self.deny_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn purge_sent(&self) {
        self.purge_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn purge_received(&self, kind: PurgeKind) {
        if kind == PurgeKind::Resync {
            self.purge_resyncs.fetch_add(1, Ordering::Relaxed);
        } else {
            self.purge_received.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn lock(&self, acquired: bool) {
        if acquired {
            self.locks_acquired.fetch_add(1, Ordering::Relaxed);
        } else {
            self.locks_busy.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, breaker: BreakerState, breaker_opened: u64) -> Stats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            calls: get(&self.calls),
            timeouts: get(&self.errors[0]),
            connection_errors: get(&self.errors[2]),
            redis_errors: get(&self.errors[3]),
            fallbacks_timeout: get(&self.fallbacks[0]),
            fallbacks_error: get(&self.fallbacks[1]),
            fallbacks_breaker_open: get(&self.fallbacks[2]),
            deny_cache_hits: get(&self.deny_cache_hits),
            breaker,
            breaker_opened,
            purge_sent: get(&self.purge_sent),
            purge_received: get(&self.purge_received),
            purge_resyncs: get(&self.purge_resyncs),
            locks_acquired: get(&self.locks_acquired),
            locks_busy: get(&self.locks_busy),
            latency: LatencyHistogram {
                counts: self.latency_buckets.iter().map(get).collect(),
                sum: Duration::from_nanos(get(&self.latency_sum_nanos)),
            },
        }
    }
}

/// A snapshot of a coordinator's counters (all monotonic since it was created, except
/// `breaker`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Redis calls made (successful or not; calls skipped by the breaker are not counted).
    pub calls: u64,
    /// Calls that ran out of their budget.
    pub timeouts: u64,
    /// Calls that failed for want of a connection.
    pub connection_errors: u64,
    /// Calls that Redis answered with an error (or an unexpected reply).
    pub redis_errors: u64,
    /// Rate-limit decisions that fell back because of a timeout.
    pub fallbacks_timeout: u64,
    /// … because of a connection or Redis error.
    pub fallbacks_error: u64,
    /// … because the breaker was open.
    pub fallbacks_breaker_open: u64,
    /// Refusals answered by the local deny cache.
    pub deny_cache_hits: u64,
    /// The breaker's state now.
    pub breaker: BreakerState,
    /// How often the breaker opened.
    pub breaker_opened: u64,
    /// Purges this node published.
    pub purge_sent: u64,
    /// Purges the listener delivered (any node's, this one's included).
    pub purge_received: u64,
    /// Resyncs the listener delivered.
    pub purge_resyncs: u64,
    /// Fill locks taken by this node.
    pub locks_acquired: u64,
    /// Fill-lock attempts that found the lock held.
    pub locks_busy: u64,
    /// Latency of every call.
    pub latency: LatencyHistogram,
}

impl Stats {
    /// Fallbacks of every reason.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks_timeout + self.fallbacks_error + self.fallbacks_breaker_open
    }
}

/// Call latencies in the buckets of [`LATENCY_BOUNDS`] (not cumulative; one more bucket than
/// bounds, for the calls above the last bound).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// Calls per bucket.
    pub counts: Vec<u64>,
    /// Total time of the calls counted.
    pub sum: Duration,
}

impl LatencyHistogram {
    /// Calls observed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Cumulative counts per bound, as a Prometheus histogram wants them (the +Inf bucket is
    /// [`LatencyHistogram::count`]).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        LATENCY_BOUNDS
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                total += c;
                (*b, total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let c = Counters::default();
        c.call(Duration::from_micros(100), Ok(()));
        c.call(Duration::from_millis(3), Ok(()));
        c.call(Duration::from_millis(20), Err(ErrorKind::Timeout));
        c.call(Duration::from_secs(5), Err(ErrorKind::Connection));
        let s = c.snapshot(BreakerState::Closed, 0);
        assert_eq!(s.calls, 4);
        assert_eq!(s.timeouts, 1);
        assert_eq!(s.connection_errors, 1);
        assert_eq!(s.latency.count(), 4);
        let cum = s.latency.cumulative();
        assert_eq!(cum[0], (0.000_25, 1));
        assert_eq!(cum[4], (0.005, 2));
        assert_eq!(cum[6], (0.02, 3), "a bound is inclusive");
        assert_eq!(cum[10], (1.0, 3));
        assert_eq!(s.latency.counts[11], 1);
    }
}
