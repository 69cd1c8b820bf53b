//! What the request span and the log lines cost, with the log layer `init` installs (JSON
//! lines at `warn,access=info`, as the passthrough benchmark's "access log on" variant, written
//! to a sink; no export):
//!
//! - `span`: make the edge's request span as `request_filter` does, enter and leave it as the
//!   request's future is polled, record the status as `logging` does, drop it; `none` does the
//!   same on a disabled span (the cost before the span existed).
//! - `phase_spans`: the DEBUG phase spans a cached proxy request opens (disabled at `info`).
//! - `access_line`: the access line, outside and inside the request span (the request fields
//!   are looked up in the span then).
//!
//! Run: `cargo bench --bench request_span -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use imgforge::config::schema::LogFormat;
use imgforge::telemetry::{self, AccessRecord, spans};
use tracing::Span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Polls of a passthrough request's future (header, upstream, body, logging).
const POLLS: usize = 8;

const ID: &str = "0123456789abcdef0123456789abcdef";

fn one_request(span: Span) {
    for _ in 0..POLLS {
        let _entered = span.enter();
        black_box(&span);
    }
    spans::record_status(&span, 200);
    drop(black_box(span));
}

fn access_line() {
    telemetry::access(&AccessRecord {
        request_id: ID,
        site: "bench",
        route: "/",
        method: "GET",
        path: "/pass_50k.jpg",
        status: 200,
        bytes: 48302,
        duration_ms: 0.183,
        upstream: Some("127.0.0.1:8000".into()),
        cache: None,
        client: Some("127.0.0.1:51000".into()),
        error: None,
    });
}

fn bench(c: &mut Criterion) {
    let filter = telemetry::log_filter("warn,access=info");
    let lines = telemetry::log_layer(LogFormat::Json, filter, std::io::sink);
    if let Err(e) = tracing_subscriber::registry().with(vec![lines]).try_init() {
        panic!("subscriber: {e}");
    }
    let mut g = c.benchmark_group("request_span");
    g.bench_function("span", |b| {
        b.iter(|| one_request(spans::request(ID, "GET", "/pass_50k.jpg", "bench", "/")))
    });
    g.bench_function("none", |b| b.iter(|| one_request(Span::none())));
    g.bench_function("phase_spans", |b| {
        b.iter(|| {
            let lookup = spans::cache_lookup();
            let upstream = spans::upstream("origin");
            spans::record_status(&upstream, 200);
            black_box((lookup, upstream))
        })
    });
    g.bench_function("access_line", |b| b.iter(access_line));
    let span = spans::request(ID, "GET", "/pass_50k.jpg", "bench", "/");
    g.bench_function("access_line_in_span", |b| {
        b.iter(|| span.in_scope(access_line))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
