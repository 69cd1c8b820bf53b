//! The metric handles of one route (or of a site without a route, or of no site), made when
//! the runtime is built: the hot path increments counters, it never looks a label set up by
//! strings. Each handle is resolved on its first use and then kept, so a series appears in
//! `/metrics` only once something was counted in it (as before handles existed).

use std::sync::OnceLock;

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use super::Metrics;

/// The `X-Cache-Status` values the gateway reports, in the order of [`RouteMetrics::cache`].
const CACHE_STATUSES: [&str; 6] = ["HIT", "MISS", "STALE", "EXPIRED", "REVALIDATED", "BYPASS"];

/// Statuses below this have a slot; others (none are sent) are looked up each time.
const STATUS_SLOTS: usize = 600;

/// Per-route handles of the `site`/`route`-labelled families.
pub struct RouteMetrics {
    site: String,
    route: String,
    families: Families,
    requests: Box<[OnceLock<IntCounter>]>,
    duration: OnceLock<Histogram>,
    rate_limited: OnceLock<IntCounter>,
    lock_waits: OnceLock<IntCounter>,
    lock_wait_seconds: OnceLock<Histogram>,
    cache: [OnceLock<IntCounter>; CACHE_STATUSES.len()],
}

/// The families the handles come from (cheap clones of the registered vectors).
struct Families {
    requests: IntCounterVec,
    duration: HistogramVec,
    rate_limited: IntCounterVec,
    lock_waits: IntCounterVec,
    lock_wait_seconds: HistogramVec,
    cache: IntCounterVec,
}

impl RouteMetrics {
    /// The handles of `site`/`route` (`"-"` where the request matched none).
    pub fn new(m: &Metrics, site: &str, route: &str) -> Self {
        Self {
            site: site.to_string(),
            route: route.to_string(),
            families: Families {
                requests: m.requests.clone(),
                duration: m.duration.clone(),
                rate_limited: m.rate_limited.clone(),
                lock_waits: m.cache_lock_waits.clone(),
                lock_wait_seconds: m.cache_lock_wait_seconds.clone(),
                cache: m.cache_requests.clone(),
            },
            requests: (0..STATUS_SLOTS).map(|_| OnceLock::new()).collect(),
            duration: OnceLock::new(),
            rate_limited: OnceLock::new(),
            lock_waits: OnceLock::new(),
            lock_wait_seconds: OnceLock::new(),
            cache: Default::default(),
        }
    }

    /// The `site` label.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The `route` label.
    pub fn route(&self) -> &str {
        &self.route
    }

    fn labels(&self) -> [&str; 2] {
        [&self.site, &self.route]
    }

    /// Counts one answered request in `imgforge_requests_total`.
    pub fn request(&self, status: u16) {
        let resolve = || {
            self.families.requests.with_label_values(&[
                &self.site,
                &self.route,
                &status.to_string(),
            ])
        };
        match self.requests.get(usize::from(status)) {
            Some(slot) => slot.get_or_init(resolve).inc(),
            None => resolve().inc(),
        }
    }

    /// Observes one request's duration in `imgforge_request_duration_seconds`.
    pub fn duration(&self, seconds: f64) {
        self.duration
            .get_or_init(|| self.families.duration.with_label_values(&self.labels()))
            .observe(seconds);
    }

    /// Counts one request refused by this route's rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited
            .get_or_init(|| self.families.rate_limited.with_label_values(&self.labels()))
            .inc();
    }

    /// Counts one request that waited on the cache lock, for `seconds` in all.
    pub fn lock_wait(&self, seconds: f64) {
        self.lock_waits
            .get_or_init(|| self.families.lock_waits.with_label_values(&self.labels()))
            .inc();
        self.lock_wait_seconds
            .get_or_init(|| {
                self.families
                    .lock_wait_seconds
                    .with_label_values(&self.labels())
            })
            .observe(seconds);
    }

    /// Counts one cacheable request by its `X-Cache-Status`.
    pub fn cache_status(&self, status: &str) {
        let resolve = || {
            self.families
                .cache
                .with_label_values(&[&self.site, &self.route, status])
        };
        match CACHE_STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.cache[i].get_or_init(resolve).inc(),
            None => resolve().inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RegistrySettings;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    #[test]
    fn handles_count_in_the_labelled_families() {
        let m = Metrics::new(&RegistrySettings::default()).unwrap();
        let r = RouteMetrics::new(&m, "shop", "/img");
        r.request(200);
        r.request(200);
        r.request(404);
        r.cache_status("HIT");
        r.cache_status("SOMETHING");
        r.rate_limited();
        let t = text(&m);
        // Only what was counted has a series.
        assert!(!t.contains(r#"status="MISS""#));
        assert!(!t.contains("imgforge_cache_lock_waits_total{"));
        assert!(t.contains(r#"imgforge_requests_total{route="/img",site="shop",status="200"} 2"#));
        assert!(t.contains(r#"imgforge_requests_total{route="/img",site="shop",status="404"} 1"#));
        assert!(
            t.contains(r#"imgforge_cache_requests_total{route="/img",site="shop",status="HIT"} 1"#)
        );
        assert!(t.contains(
            r#"imgforge_cache_requests_total{route="/img",site="shop",status="SOMETHING"} 1"#
        ));
        assert!(t.contains(r#"imgforge_rate_limited_total{route="/img",site="shop"} 1"#));
    }
}
