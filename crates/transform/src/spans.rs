//! The transform engine's spans, in one place (the request's tree is drawn in
//! docs/operations.md, "Tracing"). `DEBUG`: disabled at their call site unless traces are on.

use tracing::Span;

/// Waiting for a libvips worker.
pub fn queue() -> Span {
    tracing::debug_span!("queue")
}

/// A job on a libvips worker thread (decode, transform, encode), under `parent` (the span that
/// queued it: the job runs on another thread).
pub fn processing(parent: &Span) -> Span {
    tracing::debug_span!(parent: parent, "processing")
}

/// The final encode, where libvips actually runs the pixel pipeline built before it.
pub fn encode(format: &'static str) -> Span {
    tracing::debug_span!("encode", format)
}
