//! The request's identity for log lines: a `Layer` that keeps the `request_id`, `site` and
//! `route` fields of spans that declare a `request_id` (the edge's `request` span, the image
//! service's `image` span), so that [`super::json::JsonLines`] can put them on every line
//! emitted inside such a span, however deep.

use std::fmt;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The fields kept, in the order they are printed.
const KEYS: [&str; 3] = ["request_id", "site", "route"];

/// A request span's identity, stored in the span's extensions.
#[derive(Debug, Default, Clone)]
pub struct RequestFields {
    values: [Option<String>; 3],
}

impl RequestFields {
    /// The fields known so far, as `(key, value)`.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        KEYS.iter()
            .zip(&self.values)
            .filter_map(|(k, v)| Some((*k, v.as_deref()?)))
    }

    fn set(&mut self, field: &Field, value: impl FnOnce() -> String) {
        if let Some(i) = KEYS.iter().position(|k| *k == field.name()) {
            self.values[i] = Some(value());
        }
    }
}

impl Visit for RequestFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, || value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, || format!("{value:?}"));
    }
}

/// Keeps [`RequestFields`] for spans that declare `request_id`; ignores every other span.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestFieldsLayer;

impl<S> Layer<S> for RequestFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field("request_id").is_none() {
            return;
        }
        let mut fields = RequestFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<RequestFields>()
        {
            values.record(fields);
        }
    }
}
