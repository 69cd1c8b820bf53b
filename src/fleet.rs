//! Fleet mode: this node's link to the others through Redis (`[cluster]`; docs/cluster.md).
//! Without `[cluster]` nothing here exists and every decision stays local.
//!
//! Shared rate limits are decided by `imgforge_cluster::Coordinator`; what a request does when
//! Redis cannot decide (`on_error`) is applied in [`Fleet::rate_limit`], the one place.

use std::net::IpAddr;
use std::time::Duration;

use imgforge_cluster::{
    BreakerState, ClusterSettings, Coordinator, Endpoint, ErrorKind, FallbackReason, Observer,
    OnError, Op, PurgeKind,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::config::{ClusterConfig, OnRedisError, RedisEndpoint};
use crate::protect::ratelimit::{Decision, Limiter};

/// The node's coordinator.
pub struct Fleet {
    coordinator: Coordinator,
}

/// The cluster crate's settings for `[cluster]` (node id: the configured one or the host name).
pub fn settings(c: &ClusterConfig) -> ClusterSettings {
    let endpoint = match &c.redis {
        RedisEndpoint::Standalone(url) => Endpoint::Standalone(url.clone()),
        RedisEndpoint::Cluster(seeds) => Endpoint::Cluster(seeds.clone()),
    };
    let node_id = c
        .node_id
        .clone()
        .unwrap_or_else(imgforge_cluster::default_node_id);
    let mut s = ClusterSettings::new(endpoint, node_id);
    s.password = c.password.clone();
    s.timeout = c.timeout;
    s.on_error = match c.on_error {
        OnRedisError::Local => OnError::Local,
        OnRedisError::Allow => OnError::Allow,
        OnRedisError::Deny => OnError::Deny,
    };
    s
}

impl Fleet {
    /// Connects lazily (the first call); fails only on settings the cluster crate refuses.
    pub fn new(c: &ClusterConfig, metrics: &FleetMetrics) -> Result<Self, String> {
        let coordinator =
            Coordinator::with_observer(settings(c), std::sync::Arc::new(metrics.clone()))
                .map_err(|e| format!("[cluster]: {e}"))?;
        Ok(Self { coordinator })
    }

    /// The coordinator (purge fan-out, status).
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// One request of `client` against the fleet-wide bucket `scope`: Redis decides; when it
    /// cannot, `on_error` does (`local` asks this node's own `limiter`).
    pub async fn rate_limit<K: std::hash::Hash + Eq + Clone>(
        &self,
        scope: &str,
        client: Option<IpAddr>,
        key: &K,
        limiter: &Limiter<K>,
        now: u64,
    ) -> Decision {
        let client = client.map_or_else(String::new, |ip| ip.to_string());
        self.coordinator
            .rate_limit(scope, &client, limiter.quota())
            .await
            .resolve(|| limiter.check(key, now))
    }
}

/// The fleet's metric families, fed by the coordinator as its [`Observer`].
#[derive(Clone)]
pub struct FleetMetrics {
    calls: HistogramVec,
    errors: IntCounterVec,
    fallbacks: IntCounterVec,
    breaker_open: IntGauge,
    purges: IntCounterVec,
}

impl FleetMetrics {
    /// Registers the families (present, at zero, whether or not `[cluster]` is set).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = HistogramVec::new(
            HistogramOpts::new(
                "imgforge_cluster_call_duration_seconds",
                "Redis calls of the fleet coordinator, by operation",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["op"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "imgforge_cluster_errors_total",
                "Failed Redis calls, by operation and kind (timeout, connection, redis, breaker_open)",
            ),
            &["op", "kind"],
        )?;
        let fallbacks = IntCounterVec::new(
            Opts::new(
                "imgforge_cluster_fallbacks_total",
                "Rate-limit decisions made by [cluster] on_error because Redis could not decide",
            ),
            &["reason"],
        )?;
        let breaker_open = IntGauge::new(
            "imgforge_cluster_breaker_state",
            "The Redis circuit breaker: 0 closed, 1 half-open (probing), 2 open (Redis skipped)",
        )?;
        let purges = IntCounterVec::new(
            Opts::new(
                "imgforge_cluster_purges_total",
                "Purge messages sent to and received from the fleet, by kind",
            ),
            &["direction", "kind"],
        )?;
        // Present at zero (alert rules name them even on a single node).
        for reason in ["timeout", "error", "breaker_open"] {
            fallbacks.with_label_values(&[reason]);
        }
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(fallbacks.clone()))?;
        registry.register(Box::new(breaker_open.clone()))?;
        registry.register(Box::new(purges.clone()))?;
        Ok(Self {
            calls,
            errors,
            fallbacks,
            breaker_open,
            purges,
        })
    }
}

impl Observer for FleetMetrics {
    fn call(&self, op: Op, elapsed: Duration, outcome: Result<(), ErrorKind>) {
        self.calls
            .with_label_values(&[op.as_str()])
            .observe(elapsed.as_secs_f64());
        if let Err(kind) = outcome {
            self.errors
                .with_label_values(&[op.as_str(), kind.as_str()])
                .inc();
        }
    }

    fn fallback(&self, reason: FallbackReason) {
        self.fallbacks.with_label_values(&[reason.as_str()]).inc();
    }

    fn breaker(&self, state: BreakerState) {
        self.breaker_open.set(state.as_gauge());
    }

    fn purge_sent(&self, kind: PurgeKind) {
        self.purges
            .with_label_values(&["sent", kind.as_str()])
            .inc();
    }

    fn purge_received(&self, kind: PurgeKind) {
        self.purges
            .with_label_values(&["received", kind.as_str()])
            .inc();
    }
}
