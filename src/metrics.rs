//! The gateway's Prometheus metrics, in one registry owned by the process (not the global one, so
//! tests and embedders can hold several).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// All metric families of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Requests by site, route kind/prefix and status.
    pub requests: IntCounterVec,
    /// Request duration by site and route.
    pub duration: HistogramVec,
    /// Upstream failures by site and kind (connect, timeout, …).
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
    /// Cache tier state, refreshed at scrape time: `kind` = hits, misses, evictions, bytes,
    /// entries, corrupt, purges.
    pub cache_tier: IntGaugeVec,
    /// Downstream connections: see [`Connections`].
    pub connections: Connections,
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

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "imgforge_requests_total",
                "Requests answered by the gateway",
            ),
            &["site", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "imgforge_request_duration_seconds",
                "Time from request header to the end of the response",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["site", "route"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "imgforge_upstream_errors_total",
                "Failures talking to origin servers",
            ),
            &["site", "kind"],
        )?;
        let in_flight = IntGauge::new(
            "imgforge_requests_in_flight",
            "Requests currently being processed",
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "imgforge_upstream_healthy",
                "1 if the origin server passes its health checks",
            ),
            &["site", "server"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "imgforge_rate_limited_total",
                "Requests refused with 429 by a rate limit",
            ),
            &["site", "route"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "imgforge_cache_requests_total",
                "Cacheable requests by cache outcome",
            ),
            &["site", "route", "status"],
        )?;
        let cache_tier = IntGaugeVec::new(
            Opts::new(
                "imgforge_cache_tier",
                "Cache tier counters and usage (hits, misses, evictions, bytes, entries, corrupt, purges)",
            ),
            &["tier", "kind"],
        )?;
        registry.register(Box::new(cache_requests.clone()))?;
        let reload_failures = prometheus::IntCounter::new(
            "imgforge_config_reload_failures_total",
            "SIGHUP reloads refused because the new configuration was invalid",
        )?;
        registry.register(Box::new(reload_failures.clone()))?;
        registry.register(Box::new(cache_tier.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        let connections = Connections::register(&registry)?;
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
            reload_failures,
            connections,
        })
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families() {
        let m = Metrics::new().expect("metrics");
        m.requests.with_label_values(&["a", "/", "200"]).inc();
        let text = String::from_utf8(m.render()).expect("utf8");
        assert!(
            text.contains("imgforge_requests_total{route=\"/\",site=\"a\",status=\"200\"} 1"),
            "{text}"
        );
    }
}
