//! Logs and traces: the `tracing` subscriber (JSON or pretty lines on stdout), the access line,
//! the spans of a request and, with the `otlp` feature, their export to an OpenTelemetry
//! collector.
//!
//! - [`spans`]: every span a request opens (names, levels, fields).
//! - [`json`]: the JSON line format: flat, with the request's `request_id`, `site` and `route`
//!   on every line emitted inside the request.
//! - [`request`]: keeps those fields of the request spans for the log lines.
//! - `otlp` (feature `otlp`): the OTLP/HTTP exporter and the `traceparent` hop to the image
//!   service.

pub mod json;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
mod otlp_client;
pub mod request;
pub mod spans;

use tracing::Span;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Filter, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::schema::LogFormat;
use crate::config::{LogSettings, TracingSettings};

/// A layer of the global subscriber.
pub type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: log lines, and span export when `[tracing] otlp_endpoint` is
/// set. Later calls are ignored. Fails only when the exporter cannot be built.
pub fn init(log: &LogSettings, tracing: &TracingSettings) -> Result<(), String> {
    let directives = std::env::var("IMGFORGE_LOG")
        .ok()
        .filter(|d| EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| log.level.clone());
    let lines = log_layer(log.format, log_filter(&directives), std::io::stdout);
    #[cfg(feature = "otlp")]
    let export = otlp::layer(tracing)?;
    #[cfg(not(feature = "otlp"))]
    let export: Option<Boxed> = {
        let _ = tracing;
        None
    };
    let layers: Vec<Boxed> = std::iter::once(lines).chain(export).collect();
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

/// The filter of the log lines for `directives` (`EnvFilter` syntax, validated with the
/// config). Plain `target=level` lists get `Targets`, which gives the same answers for them
/// and is cheaper on the hot path: `EnvFilter` takes a lock on every span enter and exit (to
/// support span-scoped directives), and the edge enters its request span on every poll.
pub fn log_filter(directives: &str) -> Box<dyn Filter<Registry> + Send + Sync> {
    let plain = !directives.contains(['[', '{', '/']);
    match directives.parse::<Targets>() {
        Ok(targets) if plain => Box::new(targets),
        _ => Box::new(EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// The log lines as [`init`] installs them, written to `writer` (tests and benches write
/// elsewhere), with the request's fields. The filter applies to the lines only: the export has
/// its own (see `otlp`).
pub fn log_layer<W>(
    format: LogFormat,
    filter: Box<dyn Filter<Registry> + Send + Sync>,
    writer: W,
) -> Boxed
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines: Boxed = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(json::JsonLines)
            .fmt_fields(json::NoSpanFields)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(writer)
            .boxed(),
    };
    request::RequestFieldsLayer
        .and_then(lines)
        .with_filter(filter)
        .boxed()
}

/// Exports the spans still buffered and stops the exporter (bounded wait). Call once the
/// process is about to exit; a no-op without export.
pub fn shutdown() {
    #[cfg(feature = "otlp")]
    otlp::shutdown();
}

/// The W3C `traceparent` value that makes a request continue `span`'s trace; `None` when
/// spans are not exported (or `span` is not recorded).
pub fn traceparent(span: &Span) -> Option<String> {
    #[cfg(feature = "otlp")]
    return otlp::traceparent(span);
    #[cfg(not(feature = "otlp"))]
    {
        let _ = span;
        None
    }
}

/// Makes `span` (not yet entered) a child of the remote span named by a `traceparent` value;
/// ignored when absent, malformed, or when spans are not exported.
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    #[cfg(feature = "otlp")]
    otlp::continue_trace(span, traceparent);
    #[cfg(not(feature = "otlp"))]
    let _ = (span, traceparent);
}

/// One finished request, as the access log records it.
#[derive(Debug, Default)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub site: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration_ms: f64,
    pub upstream: Option<String>,
    pub cache: Option<&'a str>,
    pub client: Option<String>,
    pub error: Option<String>,
}

/// Writes the access line (target `access`, so it can be filtered separately).
pub fn access(r: &AccessRecord<'_>) {
    tracing::info!(
        target: "access",
        request_id = r.request_id,
        site = r.site,
        route = r.route,
        method = r.method,
        path = r.path,
        status = r.status,
        bytes = r.bytes,
        duration_ms = r.duration_ms,
        upstream = r.upstream.as_deref().unwrap_or("-"),
        cache = r.cache.unwrap_or("-"),
        client = r.client.as_deref().unwrap_or("-"),
        error = r.error.as_deref().unwrap_or(""),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` under the JSON lines at `level`; returns the raw lines.
    fn json_lines(level: &str, f: impl FnOnce()) -> Vec<String> {
        let buf = Buffer::default();
        let out = buf.clone();
        let layer = log_layer(LogFormat::Json, log_filter(level), move || out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(vec![layer]), f);
        let bytes = buf.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn parse(line: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(line) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object: {line} ({other:?})"),
        }
    }

    #[test]
    fn request_fields_on_every_line_inside_the_request() {
        let lines = json_lines("info", || {
            let span = spans::request("req-1", "GET", "/x", "shop", "/");
            span.in_scope(|| {
                tracing::info_span!("inner").in_scope(|| {
                    tracing::warn!(
                        error = "bad \"bytes\"\n",
                        n = 3u64,
                        ok = true,
                        "transform failed"
                    );
                });
                telemetry_access();
            });
            tracing::info!("outside any request");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        let first = parse(&lines[0]);
        let order = [
            "timestamp",
            "level",
            "target",
            "request_id",
            "site",
            "route",
            "message",
            "error",
            "n",
            "ok",
        ];
        assert_eq!(
            first.len(),
            order.len(),
            "flat; route not known yet: {first:?}"
        );
        let at = |k: &str| lines[0].find(&format!("\"{k}\":")).expect(k);
        assert!(
            order.windows(2).all(|w| at(w[0]) < at(w[1])),
            "key order: {}",
            lines[0]
        );
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["request_id"], "req-1");
        assert_eq!(first["error"], "bad \"bytes\"\n");
        assert_eq!(first["n"], 3);
        assert_eq!(first["ok"], true);
        // The access line names the request itself: no key twice.
        assert_eq!(
            lines[1].matches("\"request_id\"").count(),
            1,
            "{}",
            lines[1]
        );
        assert_eq!(lines[1].matches("\"site\"").count(), 1, "{}", lines[1]);
        assert_eq!(lines[1].matches("\"route\"").count(), 1, "{}", lines[1]);
        let access = parse(&lines[1]);
        assert_eq!(access["target"], "access");
        assert_eq!(access["request_id"], "req-1");
        assert!(!parse(&lines[2]).contains_key("request_id"));
    }

    fn telemetry_access() {
        access(&AccessRecord {
            request_id: "req-1",
            site: "shop",
            route: "/",
            status: 200,
            ..AccessRecord::default()
        });
    }

    /// Every (target, level) pair of a fixed set of events that `filter` lets through.
    fn passed(filter: Box<dyn Filter<Registry> + Send + Sync>) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Seen(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> Layer<S> for Seen {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let m = e.metadata();
                if let Ok(mut v) = self.0.lock() {
                    v.push(format!("{} {}", m.target(), m.level()));
                }
            }
        }
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone().with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            macro_rules! all_levels {
                ($($target:literal),*) => {$(
                    tracing::error!(target: $target, "e");
                    tracing::warn!(target: $target, "w");
                    tracing::info!(target: $target, "i");
                    tracing::debug!(target: $target, "d");
                )*};
            }
            all_levels!("imgforge::edge", "access", "pingora_core::proxy", "other");
        });
        seen.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    #[test]
    fn targets_filter_answers_as_env_filter() {
        for directives in [
            "info",
            "warn,access=info",
            "imgforge=debug,pingora_core=warn,info",
            "access=info,off",
        ] {
            let targets: Targets = directives.parse().expect("plain directives");
            assert_eq!(
                passed(Box::new(targets)),
                passed(Box::new(EnvFilter::new(directives))),
                "{directives}"
            );
            assert_eq!(
                passed(log_filter(directives)),
                passed(Box::new(EnvFilter::new(directives)))
            );
        }
        // Span-scoped directives keep the full EnvFilter (Targets would ignore the span).
        let scoped = "warn,imgforge[request]=debug";
        assert_eq!(
            passed(log_filter(scoped)),
            passed(Box::new(EnvFilter::new(scoped)))
        );
    }

    #[test]
    fn request_id_survives_a_warn_level() {
        let lines = json_lines("warn", || {
            let span = spans::image("req-2", "shop", "/img");
            span.in_scope(|| tracing::warn!("source fetch failed"));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = parse(&lines[0]);
        assert_eq!(line["request_id"], "req-2");
        assert_eq!(line["route"], "/img");
    }
}
