//! The JSON log line: one flat object per line, keys in a fixed order.
//!
//! `timestamp`, `level`, `target`, then the request's `request_id`, `site` and `route` (taken
//! from the innermost span that carries them, see [`super::request`]) unless the event names
//! them itself, then the event's own fields in the order they were written (`message` included).
//! tracing-subscriber's JSON formatter nests span fields under `span`/`spans`; log pipelines
//! want the request id as a top-level key, hence this small formatter.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::request::RequestFields;

/// The event formatter for `[log] format = "json"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Lines bridged from the `log` crate (Pingora's) carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_str("\",\"target\":")?;
        string(&mut w, meta.target())?;
        let own = |name: &str| event.metadata().fields().field(name).is_some();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let ext = span.extensions();
                if let Some(f) = ext.get::<RequestFields>() {
                    for (key, value) in f.pairs() {
                        if !own(key) {
                            w.write_char(',')?;
                            string(&mut w, key)?;
                            w.write_char(':')?;
                            string(&mut w, value)?;
                        }
                    }
                    break;
                }
            }
        }
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str("}\n")
    }
}

/// Span fields are not printed in JSON lines (only the request's, kept by
/// [`super::request::RequestFieldsLayer`]), so the fmt layer need not format them for each span.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSpanFields;

impl<'w> FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'w>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

/// Writes each field as `,"key":value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.w.write_char(',')?;
        string(self.w, field.name())?;
        self.w.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        // The `log` bridge's metadata fields: already used for `target`.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.key(field).and_then(|()| value(self.w));
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |w| string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.put(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A JSON string literal.
fn string(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string (RFC 8259: quote, backslash and
/// control characters), so formatted values need no intermediate `String`.
struct Escaped<W>(W);

impl<W: Write> Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        string(&mut out, s).expect("write");
        out
    }

    #[test]
    fn strings_are_valid_json() {
        for s in [
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\r\ttab",
            "\u{0}\u{1f} controls",
            "ünïcödé ✓",
            "",
        ] {
            let out = escaped(s);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
        }
        assert_eq!(escaped("a\u{1}b"), "\"a\\u0001b\"");
    }
}
