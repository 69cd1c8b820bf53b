//! `[tracing]` validated: where spans are exported (OTLP over HTTP), under which service name,
//! and which share of traces.

use super::error::{ConfigError, Locator};
use super::schema::TracingSection;

/// Whether this binary can export spans (built with `--features otlp`).
pub const OTLP_BUILT_IN: bool = cfg!(feature = "otlp");

/// `[tracing]`
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// Where spans are POSTed (the receiver's `/v1/traces`); `None`: no export.
    pub otlp_traces_url: Option<String>,
    pub service_name: String,
    /// 0.0 to 1.0.
    pub sample_ratio: f64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self {
            otlp_traces_url: None,
            service_name: "imgforge".into(),
            sample_ratio: 1.0,
        }
    }
}

/// Validates `[tracing]`, pushing each problem to `errs`.
pub(super) fn settings(
    t: &TracingSection,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> TracingSettings {
    let key = "tracing.otlp_endpoint";
    let otlp_traces_url = match &t.otlp_endpoint {
        None => None,
        // An empty value (e.g. from the environment) switches the export off.
        Some(e) if e.get_ref().trim().is_empty() => None,
        Some(_) if !OTLP_BUILT_IN => {
            // Failing beats a silent no-op: whoever set it expects traces.
            errs.push(loc.whole(
                key,
                "this imgforge was built without the `otlp` feature: rebuild it with \
                 `cargo build --release --features otlp`, or remove tracing.otlp_endpoint",
            ));
            None
        }
        Some(e) => match traces_url(e.get_ref().trim()) {
            Ok(url) => Some(url),
            Err(m) => {
                errs.push(loc.at(e.span(), key, m));
                None
            }
        },
    };
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        errs.push(loc.whole(
            "tracing.sample_ratio",
            format!(
                "invalid ratio {}: expected 0.0 (no trace) to 1.0 (every trace)",
                t.sample_ratio
            ),
        ));
    }
    if t.service_name.trim().is_empty() {
        errs.push(loc.whole("tracing.service_name", "must not be empty"));
    }
    TracingSettings {
        otlp_traces_url,
        service_name: t.service_name.trim().to_string(),
        sample_ratio: t.sample_ratio,
    }
}

/// The traces URL of an OTLP/HTTP receiver's base URL: `/v1/traces` appended to its path, as
/// for `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str) -> Result<String, String> {
    let uri: http::Uri = base
        .parse()
        .map_err(|e| format!("invalid URL {base:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!(
            "invalid URL {base:?}: expected http:// or https:// (OTLP over HTTP)"
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {base:?}: no host"));
    }
    if uri.query().is_some() {
        return Err(format!("invalid URL {base:?}: no query expected"));
    }
    Ok(format!("{}/v1/traces", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_urls() {
        let ok = [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            (
                "https://collector.example/otlp/",
                "https://collector.example/otlp/v1/traces",
            ),
        ];
        for (base, want) in ok {
            assert_eq!(traces_url(base).as_deref(), Ok(want), "{base}");
        }
        for bad in [
            "127.0.0.1:4318",
            "grpc://x:4317",
            "http://",
            "http://x/?a=b",
            "not a url",
        ] {
            assert!(traces_url(bad).is_err(), "{bad}");
        }
    }
}
