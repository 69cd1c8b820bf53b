//! imgproxy-compatible families: the names, types, labels and meanings of imgproxy v4's
//! Prometheus metrics, counting requests on image routes, so that dashboards and alerts built
//! for imgproxy work unchanged. `[metrics] namespace` prefixes them as
//! `IMGPROXY_PROMETHEUS_NAMESPACE` does (`imgproxy` → `imgproxy_requests_total`).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

use super::LATENCY_BUCKETS;
use super::errors::ErrorType;
use crate::transform::{JobObserver, VipsMemory};

/// `span` label values of `request_span_duration_seconds` (imgproxy's spelling).
pub mod span {
    /// Waiting for a libvips worker.
    pub const QUEUE: &str = "queue";
    /// Fetching the source.
    pub const DOWNLOADING: &str = "downloading";
    /// The job on a libvips worker.
    pub const PROCESSING: &str = "processing";
}

/// The imgproxy families (see `docs/monitoring.md`).
pub struct ImgproxyMetrics {
    /// `requests_total`: image requests answered.
    pub requests: IntCounter,
    /// `status_codes_total{status}`: image responses by status.
    pub status_codes: IntCounterVec,
    /// `errors_total{type}`: failed image requests by [`ErrorType`].
    pub errors: IntCounterVec,
    /// `request_duration_seconds`: image requests, header in to response out.
    pub duration: Histogram,
    /// `request_span_duration_seconds{span}`: queue, downloading, processing.
    pub spans: HistogramVec,
    /// `download_duration_seconds`: imgproxy's older name of the downloading span.
    pub download_duration: Histogram,
    /// `processing_duration_seconds`: imgproxy's older name of the processing span.
    pub processing_duration: Histogram,
    /// `workers`: configured libvips workers.
    pub workers: IntGauge,
    /// `requests_in_progress`: image requests being handled now.
    pub requests_in_progress: IntGauge,
    /// `images_in_progress`: jobs running on a libvips worker now.
    pub images_in_progress: IntGauge,
    /// `workers_utilization`: `requests_in_progress / workers * 100` (imgproxy's definition),
    /// set at scrape time.
    pub workers_utilization: Gauge,
    /// `vips_memory_bytes`, set at scrape time.
    pub vips_memory: IntGauge,
    /// `vips_max_memory_bytes`, set at scrape time.
    pub vips_max_memory: IntGauge,
    /// `vips_allocs`, set at scrape time.
    pub vips_allocs: IntGauge,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ImgproxyMetrics {
    /// Creates the families under `namespace` (may be empty) and registers them.
    pub fn register(
        registry: &Registry,
        namespace: &str,
        workers: usize,
    ) -> Result<Self, prometheus::Error> {
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace(namespace);
        let hist = |name: &str, help: &str| {
            HistogramOpts::new(name, help)
                .namespace(namespace)
                .buckets(LATENCY_BUCKETS.to_vec())
        };
        let m = Self {
            requests: IntCounter::with_opts(opts(
                "requests_total",
                "Image requests answered (imgproxy-compatible)",
            ))?,
            status_codes: IntCounterVec::new(
                opts("status_codes_total", "Image responses by status code"),
                &["status"],
            )?,
            errors: IntCounterVec::new(
                opts("errors_total", "Failed image requests by error type"),
                &["type"],
            )?,
            duration: Histogram::with_opts(hist(
                "request_duration_seconds",
                "Image requests: time from request header to the end of the response",
            ))?,
            spans: HistogramVec::new(
                hist(
                    "request_span_duration_seconds",
                    "Image request spans: queue (waiting for a libvips worker), downloading (source fetch), processing (libvips)",
                ),
                &["span"],
            )?,
            download_duration: Histogram::with_opts(hist(
                "download_duration_seconds",
                "Source fetch time (same as request_span_duration_seconds{span=\"downloading\"})",
            ))?,
            processing_duration: Histogram::with_opts(hist(
                "processing_duration_seconds",
                "libvips time (same as request_span_duration_seconds{span=\"processing\"})",
            ))?,
            workers: IntGauge::with_opts(opts("workers", "Configured libvips workers"))?,
            requests_in_progress: IntGauge::with_opts(opts(
                "requests_in_progress",
                "Image requests being handled now",
            ))?,
            images_in_progress: IntGauge::with_opts(opts(
                "images_in_progress",
                "Images being processed by libvips now",
            ))?,
            workers_utilization: Gauge::with_opts(opts(
                "workers_utilization",
                "requests_in_progress / workers * 100",
            ))?,
            vips_memory: IntGauge::with_opts(opts(
                "vips_memory_bytes",
                "Memory libvips holds now (vips_tracked_get_mem)",
            ))?,
            vips_max_memory: IntGauge::with_opts(opts(
                "vips_max_memory_bytes",
                "Most memory libvips held at once (vips_tracked_get_mem_highwater)",
            ))?,
            vips_allocs: IntGauge::with_opts(opts(
                "vips_allocs",
                "Live libvips allocations (vips_tracked_get_allocs)",
            ))?,
        };
        m.workers.set(i64::try_from(workers).unwrap_or(i64::MAX));
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.status_codes.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.spans.clone()))?;
        registry.register(Box::new(m.download_duration.clone()))?;
        registry.register(Box::new(m.processing_duration.clone()))?;
        registry.register(Box::new(m.workers.clone()))?;
        registry.register(Box::new(m.requests_in_progress.clone()))?;
        registry.register(Box::new(m.images_in_progress.clone()))?;
        registry.register(Box::new(m.workers_utilization.clone()))?;
        registry.register(Box::new(m.vips_memory.clone()))?;
        registry.register(Box::new(m.vips_max_memory.clone()))?;
        registry.register(Box::new(m.vips_allocs.clone()))?;
        Ok(m)
    }

    /// One finished image request: counts it, its status (when one was sent) and its error.
    pub fn request_done(&self, status: u16, elapsed: Duration, error: Option<ErrorType>) {
        self.requests.inc();
        if status > 0 {
            self.status_codes
                .with_label_values(&[&status.to_string()])
                .inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            self.error(e);
        }
    }

    /// Counts one error.
    pub fn error(&self, e: ErrorType) {
        self.errors.with_label_values(&[e.as_str()]).inc();
    }

    /// One source fetch (successful or not).
    pub fn downloaded(&self, took: Duration) {
        let s = took.as_secs_f64();
        self.spans
            .with_label_values(&[span::DOWNLOADING])
            .observe(s);
        self.download_duration.observe(s);
    }

    /// Sets the gauges read at scrape time: libvips's memory and the utilisation.
    pub fn refresh(&self, vips: VipsMemory) {
        self.vips_memory.set(to_i64(vips.bytes));
        self.vips_max_memory.set(to_i64(vips.max_bytes));
        self.vips_allocs.set(to_i64(vips.allocs));
        let workers = self.workers.get();
        let utilization = if workers > 0 {
            self.requests_in_progress.get() as f64 / workers as f64 * 100.0
        } else {
            0.0
        };
        self.workers_utilization.set(utilization);
    }

    /// The engine's observer: queue and processing spans, images in progress, and the
    /// gateway's own count of queued jobs (`queued`).
    pub fn job_observer(&self, queued: IntGauge) -> Arc<dyn JobObserver> {
        Arc::new(JobMetrics {
            queue: self.spans.with_label_values(&[span::QUEUE]),
            processing: self.spans.with_label_values(&[span::PROCESSING]),
            processing_legacy: self.processing_duration.clone(),
            images_in_progress: self.images_in_progress.clone(),
            queued,
        })
    }
}

/// [`JobObserver`] feeding the families above.
struct JobMetrics {
    queue: Histogram,
    processing: Histogram,
    processing_legacy: Histogram,
    images_in_progress: IntGauge,
    queued: IntGauge,
}

impl JobObserver for JobMetrics {
    fn queued(&self) {
        self.queued.inc();
    }

    fn dequeued(&self, waited: Duration) {
        self.queued.dec();
        self.queue.observe(waited.as_secs_f64());
    }

    fn started(&self) {
        self.images_in_progress.inc();
    }

    fn finished(&self, ran: Duration) {
        self.images_in_progress.dec();
        self.processing.observe(ran.as_secs_f64());
        self.processing_legacy.observe(ran.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn namespace_prefixes_every_family() {
        let r = Registry::new();
        let m = ImgproxyMetrics::register(&r, "imgproxy", 4).expect("register");
        m.request_done(200, Duration::from_millis(3), None);
        let t = text(&r);
        assert!(t.contains("\nimgproxy_requests_total 1\n"), "{t}");
        assert!(t.contains("\nimgproxy_workers 4\n"), "{t}");
        assert!(!t.contains("\nrequests_total"), "{t}");

        let r = Registry::new();
        ImgproxyMetrics::register(&r, "", 4).expect("register");
        assert!(text(&r).contains("\nrequests_total 0\n"));
    }

    #[test]
    fn requests_statuses_errors_and_utilization() {
        let r = Registry::new();
        let m = ImgproxyMetrics::register(&r, "", 4).expect("register");
        m.request_done(200, Duration::from_millis(1), None);
        m.request_done(404, Duration::from_millis(1), Some(ErrorType::PathParsing));
        m.request_done(0, Duration::from_millis(1), Some(ErrorType::Io));
        assert_eq!(m.requests.get(), 3);
        assert_eq!(m.status_codes.with_label_values(&["200"]).get(), 1);
        assert_eq!(m.status_codes.with_label_values(&["404"]).get(), 1);
        assert_eq!(m.errors.with_label_values(&["path_parsing"]).get(), 1);
        assert_eq!(m.errors.with_label_values(&["IO"]).get(), 1);
        assert_eq!(m.duration.get_sample_count(), 3);
        m.requests_in_progress.set(3);
        m.refresh(VipsMemory {
            bytes: 10,
            max_bytes: 20,
            allocs: 2,
        });
        assert!((m.workers_utilization.get() - 75.0).abs() < 1e-9);
        assert_eq!(
            (
                m.vips_memory.get(),
                m.vips_max_memory.get(),
                m.vips_allocs.get()
            ),
            (10, 20, 2)
        );
    }

    #[test]
    fn job_observer_feeds_spans_and_gauges() {
        let r = Registry::new();
        let m = ImgproxyMetrics::register(&r, "", 1).expect("register");
        let queued = IntGauge::new("q", "q").expect("gauge");
        let o = m.job_observer(queued.clone());
        o.queued();
        assert_eq!(queued.get(), 1);
        o.dequeued(Duration::from_millis(5));
        o.started();
        assert_eq!((queued.get(), m.images_in_progress.get()), (0, 1));
        o.finished(Duration::from_millis(7));
        assert_eq!(m.images_in_progress.get(), 0);
        let count = |s: &str| m.spans.with_label_values(&[s]).get_sample_count();
        assert_eq!((count("queue"), count("processing")), (1, 1));
        assert_eq!(m.processing_duration.get_sample_count(), 1);
        m.downloaded(Duration::from_millis(2));
        assert_eq!(count("downloading"), 1);
        assert_eq!(m.download_duration.get_sample_count(), 1);
    }
}
