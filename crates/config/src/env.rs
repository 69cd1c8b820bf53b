//! `IMGFORGE_<SECTION>_<KEY>` environment overrides for the scalars of `[server]`, `[log]`,
//! `[transform]`, `[cache]`, `[metrics]` and `[tracing]`. Applied to the schema before validation,
//! so an overridden value is validated like a written one; a value that does not parse names its
//! variable.

use toml::Spanned;

use super::error::{ConfigError, Origin};
use super::schema::{FileConfig, LogFormat};
use super::units::{ByteSize, HumanDuration};

/// Every variable understood, for `--help`-style docs and tests.
pub const VARIABLES: &[&str] = &[
    "IMGFORGE_SERVER_LISTEN",
    "IMGFORGE_SERVER_ADMIN_LISTEN",
    "IMGFORGE_SERVER_THREADS",
    "IMGFORGE_SERVER_GRACE_PERIOD",
    "IMGFORGE_SERVER_UPGRADE_SOCK",
    "IMGFORGE_SERVER_PID_FILE",
    "IMGFORGE_SERVER_ADMIN_TOKEN",
    "IMGFORGE_SERVER_MAX_REQUESTS_PER_CLIENT",
    "IMGFORGE_SERVER_MAX_CONNECTIONS",
    "IMGFORGE_SERVER_MAX_URL_LENGTH",
    "IMGFORGE_SERVER_MAX_HEADER_SIZE",
    "IMGFORGE_LOG_FORMAT",
    "IMGFORGE_LOG_LEVEL",
    "IMGFORGE_LOG_ACCESS_LOG",
    "IMGFORGE_TRANSFORM_WORKERS",
    "IMGFORGE_TRANSFORM_QUEUE",
    "IMGFORGE_TRANSFORM_TIMEOUT",
    "IMGFORGE_TRANSFORM_MAX_SRC_RESOLUTION",
    "IMGFORGE_TRANSFORM_MAX_SRC_FILE_SIZE",
    "IMGFORGE_CACHE_MEMORY_SIZE",
    "IMGFORGE_CACHE_DISK_PATH",
    "IMGFORGE_CACHE_DISK_SIZE",
    "IMGFORGE_CACHE_STATUS_HEADER",
    "IMGFORGE_CACHE_LOCK_TIMEOUT",
    "IMGFORGE_METRICS_NAMESPACE",
    "IMGFORGE_TRACING_OTLP_ENDPOINT",
    "IMGFORGE_TRACING_SERVICE_NAME",
    "IMGFORGE_TRACING_SAMPLE_RATIO",
];

/// Applies the overrides found by `lookup` (normally `std::env::var`).
pub fn apply(
    cfg: &mut FileConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for &var in VARIABLES {
        let Some(value) = lookup(var) else { continue };
        set(cfg, var, value.trim()).map_err(|message| ConfigError {
            origin: Origin::Env(var.to_string()),
            key: var
                .trim_start_matches("IMGFORGE_")
                .to_ascii_lowercase()
                .replacen('_', ".", 1),
            message,
        })?;
    }
    Ok(())
}

fn set(cfg: &mut FileConfig, var: &str, v: &str) -> Result<(), String> {
    let s = &mut cfg.server;
    let t = &mut cfg.transform;
    let c = &mut cfg.cache;
    match var {
        "IMGFORGE_SERVER_LISTEN" => {
            s.listen = v
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| Spanned::new(0..0, x.to_string()))
                .collect()
        }
        "IMGFORGE_SERVER_ADMIN_LISTEN" => s.admin_listen = Spanned::new(0..0, v.to_string()),
        "IMGFORGE_SERVER_THREADS" => s.threads = number(v)?,
        "IMGFORGE_SERVER_GRACE_PERIOD" => s.grace_period = HumanDuration::parse(v)?,
        "IMGFORGE_SERVER_UPGRADE_SOCK" => s.upgrade_sock = v.to_string(),
        "IMGFORGE_SERVER_PID_FILE" => s.pid_file = v.to_string(),
        "IMGFORGE_SERVER_ADMIN_TOKEN" => s.admin_token = Some(v.to_string()),
        "IMGFORGE_SERVER_MAX_REQUESTS_PER_CLIENT" => {
            s.max_requests_per_client = u32::try_from(number(v)?).unwrap_or(u32::MAX)
        }
        "IMGFORGE_SERVER_MAX_CONNECTIONS" => {
            s.max_connections = u32::try_from(number(v)?).unwrap_or(u32::MAX)
        }
        "IMGFORGE_SERVER_MAX_URL_LENGTH" => s.max_url_length = ByteSize::parse(v)?,
        "IMGFORGE_SERVER_MAX_HEADER_SIZE" => s.max_header_size = ByteSize::parse(v)?,
        "IMGFORGE_LOG_FORMAT" => {
            cfg.log.format = match v {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => {
                    return Err(format!(
                        "invalid format {v:?}: expected \"json\" or \"pretty\""
                    ));
                }
            }
        }
        "IMGFORGE_LOG_LEVEL" => cfg.log.level = v.to_string(),
        "IMGFORGE_LOG_ACCESS_LOG" => cfg.log.access_log = boolean(v)?,
        "IMGFORGE_TRANSFORM_WORKERS" => t.workers = number(v)?,
        "IMGFORGE_TRANSFORM_QUEUE" => t.queue = number(v)?,
        "IMGFORGE_TRANSFORM_TIMEOUT" => t.timeout = HumanDuration::parse(v)?,
        "IMGFORGE_TRANSFORM_MAX_SRC_RESOLUTION" => {
            t.max_src_resolution = v
                .parse()
                .map_err(|_| format!("invalid number {v:?}: expected megapixels, e.g. 50"))?
        }
        "IMGFORGE_TRANSFORM_MAX_SRC_FILE_SIZE" => t.max_src_file_size = ByteSize::parse(v)?,
        "IMGFORGE_CACHE_MEMORY_SIZE" => c.memory_size = ByteSize::parse(v)?,
        "IMGFORGE_CACHE_DISK_PATH" => {
            c.disk_path = (!v.is_empty()).then(|| std::path::PathBuf::from(v))
        }
        "IMGFORGE_CACHE_DISK_SIZE" => c.disk_size = ByteSize::parse(v)?,
        "IMGFORGE_CACHE_STATUS_HEADER" => c.status_header = boolean(v)?,
        "IMGFORGE_CACHE_LOCK_TIMEOUT" => c.lock_timeout = HumanDuration::parse(v)?,
        "IMGFORGE_METRICS_NAMESPACE" => cfg.metrics.namespace = v.to_string(),
        // Empty switches the export off (validation treats an empty endpoint as unset).
        "IMGFORGE_TRACING_OTLP_ENDPOINT" => {
            cfg.tracing.otlp_endpoint = Some(Spanned::new(0..0, v.to_string()))
        }
        "IMGFORGE_TRACING_SERVICE_NAME" => cfg.tracing.service_name = v.to_string(),
        "IMGFORGE_TRACING_SAMPLE_RATIO" => {
            cfg.tracing.sample_ratio = v
                .parse()
                .map_err(|_| format!("invalid number {v:?}: expected a ratio, e.g. 0.1"))?
        }
        _ => {}
    }
    Ok(())
}

fn number(v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("invalid number {v:?}: expected a whole number"))
}

fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("invalid boolean {v:?}: expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn overrides_apply() {
        let mut cfg = FileConfig::default();
        apply(
            &mut cfg,
            env(&[
                ("IMGFORGE_SERVER_THREADS", "3"),
                ("IMGFORGE_SERVER_LISTEN", "127.0.0.1:1,127.0.0.1:2"),
                ("IMGFORGE_CACHE_MEMORY_SIZE", "1MiB"),
                ("IMGFORGE_LOG_FORMAT", "pretty"),
                ("IMGFORGE_METRICS_NAMESPACE", "imgproxy"),
                ("IMGFORGE_TRACING_SAMPLE_RATIO", "0.25"),
                ("IMGFORGE_TRACING_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(cfg.metrics.namespace, "imgproxy");
        assert_eq!(cfg.server.threads, 3);
        assert_eq!(cfg.server.listen.len(), 2);
        assert_eq!(cfg.cache.memory_size, ByteSize(1 << 20));
        assert_eq!(cfg.log.format, LogFormat::Pretty);
        assert_eq!(cfg.tracing.sample_ratio, 0.25);
        assert_eq!(
            cfg.tracing.otlp_endpoint.map(|e| e.into_inner()).as_deref(),
            Some("http://127.0.0.1:4318")
        );
    }

    #[test]
    fn bad_override_names_variable() {
        let mut cfg = FileConfig::default();
        let err =
            apply(&mut cfg, env(&[("IMGFORGE_TRANSFORM_TIMEOUT", "soon")])).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("IMGFORGE_TRANSFORM_TIMEOUT"), "{text}");
        assert!(text.contains("invalid duration"), "{text}");
    }
}
