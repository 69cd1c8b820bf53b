//! OpenTelemetry export (feature `otlp`): the request spans of [`super::spans`] become OTLP
//! spans, batched on the SDK's own thread and POSTed as protobuf to `[tracing] otlp_endpoint`.
//! Also the `traceparent` hop from the edge to the image service, so both halves of a request
//! are one trace.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;

use super::Boxed;
use super::otlp_client::PingoraClient;
use crate::config::TracingSettings;

/// The provider, kept to flush it at exit; `None` when nothing is exported.
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);
/// Whether spans are exported: read per request, so not behind the lock.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the exit waits for the last batch.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The layer that turns spans into exported OTLP spans, when an endpoint is configured.
pub(super) fn layer(settings: &TracingSettings) -> Result<Option<Boxed>, String> {
    let Some(url) = &settings.otlp_traces_url else {
        return Ok(None);
    };
    let client = PingoraClient::new(EXPORT_TIMEOUT)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    // The edge decides; the image service follows the decision it receives in `traceparent`.
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("imgforge");
    if let Ok(mut slot) = PROVIDER.lock() {
        *slot = Some(provider);
        EXPORTING.store(true, Ordering::Release);
    }
    // Only imgforge's spans and events (events become span events); not the access line, not
    // Pingora's or the SDK's own lines. Attributes kept to what the spans declare: no thread,
    // source location or busy/idle timings per span.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(Targets::new().with_target("imgforge", Level::DEBUG));
    Ok(Some(Box::new(layer)))
}

/// Flushes and stops the exporter (once).
pub(super) fn shutdown() {
    EXPORTING.store(false, Ordering::Release);
    let provider = PROVIDER.lock().ok().and_then(|mut p| p.take());
    if let Some(p) = provider
        && let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
    {
        tracing::warn!(error = %e, "OTLP export: last spans not flushed");
    }
}

fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
}

/// See [`super::traceparent`].
pub(super) fn traceparent(span: &Span) -> Option<String> {
    if span.is_disabled() || !exporting() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Carrier(None);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.0
}

/// See [`super::continue_trace`].
pub(super) fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    if span.is_disabled() || !exporting() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Carrier(Some(value.to_string())));
    if cx.span().span_context().is_valid() {
        // Fails only once the span has started, which a fresh span has not.
        let _ = span.set_parent(cx);
    }
}

/// A carrier of the one header this hop uses (`tracestate` is not forwarded: nothing here
/// sets it).
struct Carrier(Option<String>);

const TRACEPARENT: &str = "traceparent";

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0.as_deref()).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}
