//! Logging set-up (`tracing`, JSON or pretty) and the access log line.

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;
use crate::config::schema::LogFormat;

/// Installs the global subscriber. Safe to call more than once (later calls are ignored).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_env("IMGFORGE_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
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
