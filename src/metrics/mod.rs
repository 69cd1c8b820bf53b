//! The gateway's Prometheus metrics, in one registry owned by the process (not the global one, so
//! tests and embedders can hold several).
//!
//! - this file: imgforge's own families (`imgforge_*`, per site and route);
//! - [`imgproxy`]: imgproxy-compatible families for image routes, optionally namespaced;
//! - [`errors`]: imgproxy's error types and which failure falls in which (pure).
//!
//! Every family is listed with its labels and meaning in `docs/monitoring.md`.

pub mod errors;
pub mod imgproxy;
mod route;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub use errors::ErrorType;
pub use imgproxy::ImgproxyMetrics;
pub use route::RouteMetrics;

/// Histogram buckets (seconds) of every latency family: from a memory cache hit (sub-ms) to a
/// transform near its default timeout.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What [`Metrics::new`] needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Prefix of the imgproxy-compatible families (`[metrics] namespace`); empty for none.
    pub namespace: String,
    /// `[transform] workers`, exported as `workers`.
    pub workers: usize,
    /// `[transform] queue`, exported as `imgforge_transform_queue_capacity`.
    pub queue: usize,
}

/// All metric families of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Requests by site, route kind/prefix and status.
    pub requests: IntCounterVec,
    /// Request duration by site and route.
    pub duration: HistogramVec,
    /// Upstream failures by site, route and kind (connect, timeout, …).
    pub upstream_errors: IntCounterVec,
    /// Requests being processed now.
    pub in_flight: IntGauge,
    /// 1 per healthy origin server, 0 per unhealthy one (refreshed at scrape time).
    pub upstream_healthy: IntGaugeVec,
    /// Requests refused by a rate limit, by site and route (`route="*"`: the global cap).
    pub rate_limited: IntCounterVec,
    /// Reloads refused because the new configuration was invalid.
    pub reload_failures: prometheus::IntCounter,
    /// Cacheable requests by outcome (`HIT`, `MISS`, `STALE`, `EXPIRED`, `REVALIDATED`, `BYPASS`).
    pub cache_requests: IntCounterVec,
    /// Cache tier state, refreshed at scrape time: `kind` = hits, misses, inserts, rejected,
    /// evictions, evicted_bytes, bytes, entries, corrupt, errors, purges.
    pub cache_tier: IntGaugeVec,
    /// Requests that waited behind another request filling the same cache key, by site and
    /// route.
    pub cache_lock_waits: IntCounterVec,
    /// How long those requests waited in all, by site and route.
    pub cache_lock_wait_seconds: HistogramVec,
    /// How each lock wait ended, as pingora-cache reports it (`done`, `age_timeout`, …).
    pub cache_lock_wait_outcomes: IntCounterVec,
    /// Transform jobs waiting for a libvips worker now.
    pub transform_queued: IntGauge,
    /// Transform jobs allowed to wait (`[transform] queue`).
    pub transform_queue_capacity: IntGauge,
    /// The imgproxy-compatible families.
    pub imgproxy: ImgproxyMetrics,
    /// Downstream connections: see [`Connections`].
    pub connections: Connections,
    /// Fleet mode's Redis calls, fallbacks, breaker and purges (zero without `[cluster]`).
    pub fleet: crate::fleet::FleetMetrics,
}

/// Downstream connection families (`server.max_connections`), kept in one block.
#[derive(Clone)]
pub struct Connections {
    /// Public-listener connections open now.
    pub open: IntGauge,
    /// Connections refused because `max_connections` were open.
    pub refused: prometheus::IntCounter,
}

impl Connections {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open = IntGauge::new(
            "imgforge_connections_open",
            "Downstream connections open on the public listeners",
        )?;
        let refused = prometheus::IntCounter::new(
            "imgforge_connections_refused_total",
            "Downstream connections refused because server.max_connections were open",
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Self { open, refused })
    }
}

pub use crate::config::metrics::check_namespace;

impl Metrics {
    /// Creates and registers every family.
    pub fn new(settings: &RegistrySettings) -> Result<Self, prometheus::Error> {
        check_namespace(&settings.namespace).map_err(prometheus::Error::Msg)?;
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let requests = counter(
            "imgforge_requests_total",
            "Requests answered by the gateway",
            &["site", "route", "status"],
        )?;
        let duration = histogram(
            "imgforge_request_duration_seconds",
            "Time from request header to the end of the response",
            &["site", "route"],
        )?;
        let upstream_errors = counter(
            "imgforge_upstream_errors_total",
            "Failures talking to origin servers",
            &["site", "route", "kind"],
        )?;
        let in_flight = gauge(
            "imgforge_requests_in_flight",
            "Requests currently being processed",
        )?;
        let upstream_healthy = gauges(
            "imgforge_upstream_healthy",
            "1 if the origin server passes its health checks",
            &["site", "server"],
        )?;
        let rate_limited = counter(
            "imgforge_rate_limited_total",
            "Requests refused with 429 by a rate limit",
            &["site", "route"],
        )?;
        let cache_requests = counter(
            "imgforge_cache_requests_total",
            "Cacheable requests by cache outcome",
            &["site", "route", "status"],
        )?;
        let cache_tier = gauges(
            "imgforge_cache_tier",
            "Cache tier counters and usage (hits, misses, inserts, rejected, evictions, evicted_bytes, bytes, entries, corrupt, errors, purges)",
            &["tier", "kind"],
        )?;
        let cache_lock_waits = counter(
            "imgforge_cache_lock_waits_total",
            "Requests that waited for another request to fill the same cache key",
            &["site", "route"],
        )?;
        let cache_lock_wait_seconds = histogram(
            "imgforge_cache_lock_wait_seconds",
            "Time a request waited on the cache lock (all its waits)",
            &["site", "route"],
        )?;
        let cache_lock_wait_outcomes = counter(
            "imgforge_cache_lock_wait_outcomes_total",
            "How cache lock waits ended (done, transient_error, give_up, dangling, wait_timeout, age_timeout)",
            &["outcome"],
        )?;
        let reload_failures = prometheus::IntCounter::new(
            "imgforge_config_reload_failures_total",
            "SIGHUP reloads refused because the new configuration was invalid",
        )?;
        registry.register(Box::new(reload_failures.clone()))?;
        let transform_queued = gauge(
            "imgforge_transform_queue_jobs",
            "Transform jobs waiting for a libvips worker",
        )?;
        let transform_queue_capacity = gauge(
            "imgforge_transform_queue_capacity",
            "Transform jobs allowed to wait ([transform] queue); beyond, 429",
        )?;
        transform_queue_capacity.set(i64::try_from(settings.queue).unwrap_or(i64::MAX));
        let imgproxy = ImgproxyMetrics::register(&registry, &settings.namespace, settings.workers)?;
        let connections = Connections::register(&registry)?;
        let fleet = crate::fleet::FleetMetrics::register(&registry)?;
        Ok(Self {
            registry,
            requests,
            duration,
            upstream_errors,
            in_flight,
            upstream_healthy,
            rate_limited,
            cache_requests,
            cache_tier,
            cache_lock_waits,
            cache_lock_wait_seconds,
            cache_lock_wait_outcomes,
            reload_failures,
            transform_queued,
            transform_queue_capacity,
            imgproxy,
            connections,
            fleet,
        })
    }

    /// The engine's observer (spans, images in progress, queued jobs).
    pub fn job_observer(&self) -> std::sync::Arc<dyn crate::transform::JobObserver> {
        self.imgproxy.job_observer(self.transform_queued.clone())
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Increments a gauge for its lifetime, so that every exit path decrements it.
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    /// Increments `gauge` now; decremented when dropped.
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(namespace: &str) -> RegistrySettings {
        RegistrySettings {
            namespace: namespace.into(),
            workers: 2,
            queue: 8,
        }
    }

    #[test]
    fn renders_families() {
        let m = Metrics::new(&settings("")).expect("metrics");
        m.requests.with_label_values(&["a", "/", "200"]).inc();
        let text = String::from_utf8(m.render()).expect("utf8");
        assert!(
            text.contains("imgforge_requests_total{route=\"/\",site=\"a\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("\nimgforge_transform_queue_capacity 8\n"),
            "{text}"
        );
        assert!(text.contains("\nworkers 2\n"), "{text}");
    }

    #[test]
    fn namespaces() {
        for ok in ["", "imgproxy", "img_proxy2", "_x"] {
            assert_eq!(check_namespace(ok), Ok(()), "{ok}");
            Metrics::new(&settings(ok)).expect(ok);
        }
        for bad in ["imgforge", "2x", "a-b", "a:b", "a b", "é"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
            assert!(Metrics::new(&settings(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn gauge_guard_decrements_on_drop() {
        let g = IntGauge::new("g", "g").expect("gauge");
        let a = GaugeGuard::new(&g);
        let b = GaugeGuard::new(&g);
        assert_eq!(g.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(g.get(), 0);
    }
}
