//! What the code uses: the validated runtime model, built once from the schema.
//!
//! Validation collects every problem it finds (not only the first), each with its position. It
//! is pure: no file is read and no name is looked up here (`*_file` secrets are read before,
//! origin names resolved and files checked after, by [`crate::resolve`]), so every rule can be
//! unit-tested on a string.
//!
//! One module per part of the file: [`server`] (`[server]`), [`site`] (`[[site]]` and its origin),
//! [`route`] (`[[site.route]]`); this one holds the whole and the small sections.

mod cluster;
mod route;
mod server;
mod site;

use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, Locator};
use super::schema::{FileConfig, LogFormat};

pub use cluster::{ClusterConfig, OnRedisError, RedisEndpoint};
pub use route::{CachePolicy, ImageRoute, RateLimit, Route, RouteKind, mime_format, rate};
pub use server::{ServerSettings, TlsSettings};
pub(crate) use site::parse_server;
pub use site::{
    HealthCheckSettings, HostPattern, Origin, ServerAddr, Site, UpstreamSettings, host_pattern,
};

/// Where a configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A TOML file (with `IMGFORGE_<SECTION>_<KEY>` overrides from the environment).
    File(PathBuf),
    /// The environment alone: no config file (see `from_env`), with the same overrides.
    Environment,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages; `environment` when there is none).
    pub path: PathBuf,
    /// What a reload reads again.
    pub source: Source,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub transform: TransformSettings,
    pub cache: CacheSettings,
    pub metrics: MetricsSettings,
    pub tracing: super::TracingSettings,
    /// `[cluster]`; `None`: a single node.
    pub cluster: Option<ClusterConfig>,
    pub sites: Vec<Site>,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub access_log: bool,
}

/// `[transform]`
#[derive(Debug, Clone)]
pub struct TransformSettings {
    pub workers: usize,
    pub queue: usize,
    pub timeout: Duration,
    pub max_src_resolution_mp: f64,
    pub max_src_file_size: u64,
    pub max_animation_frames: u32,
    pub max_animation_frame_resolution_mp: f64,
    pub max_result_dimension: u32,
    pub avif_speed: u8,
    pub jpeg_progressive: bool,
    pub formats: Vec<imgforge_imgproxy::Format>,
}

/// `[cache]`
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub memory_size: u64,
    pub disk_path: Option<PathBuf>,
    pub disk_size: u64,
    pub status_header: bool,
    pub lock_timeout: Duration,
}

/// `[metrics]`
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Prefix of the imgproxy-compatible families (valid, possibly empty).
    pub namespace: String,
}

impl CacheSettings {
    /// Whether any tier is configured.
    pub fn enabled(&self) -> bool {
        self.memory_size > 0 || self.disk_path.is_some()
    }
}

/// Validates the schema into the runtime model.
pub(crate) fn build(file: FileConfig, loc: &Locator<'_>) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let server = server::server(&file.server, loc, &mut errs);
    let log = LogSettings {
        format: file.log.format,
        level: file.log.level.clone(),
        access_log: file.log.access_log,
    };
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        errs.push(loc.whole(
            "log.level",
            format!(
                "invalid level {:?}: expected error, warn, info, debug, trace or a filter directive",
                log.level
            ),
        ));
    }
    let t = &file.transform;
    if t.workers == 0 {
        errs.push(loc.whole("transform.workers", "must be at least 1"));
    }
    if !(t.max_src_resolution > 0.0 && t.max_src_resolution.is_finite()) {
        errs.push(loc.whole(
            "transform.max_src_resolution",
            "expected a positive number of megapixels",
        ));
    }
    let transform = TransformSettings {
        workers: t.workers,
        queue: t.queue,
        timeout: t.timeout.0,
        max_src_resolution_mp: t.max_src_resolution,
        max_src_file_size: t.max_src_file_size.0,
        max_animation_frames: t.max_animation_frames.max(1),
        max_animation_frame_resolution_mp: t.max_animation_frame_resolution.max(0.0),
        max_result_dimension: t.max_result_dimension,
        avif_speed: t.avif_speed,
        jpeg_progressive: t.jpeg_progressive,
        formats: t
            .formats
            .iter()
            .filter_map(|f| match imgforge_imgproxy::Format::from_name(f) {
                Some(fmt) if fmt.is_output() => Some(fmt),
                _ => {
                    errs.push(loc.whole(
                        "transform.formats",
                        format!(
                            "{f:?} is not an output format: expected jpeg, png, webp, avif or gif"
                        ),
                    ));
                    None
                }
            })
            .collect(),
    };
    if t.avif_speed > 9 {
        errs.push(loc.whole("transform.avif_speed", "expected 0 (slow) to 9 (fast)"));
    }
    let cache = CacheSettings {
        memory_size: file.cache.memory_size.0,
        disk_path: file.cache.disk_path.as_deref().map(|p| loc.resolve(p)),
        disk_size: file.cache.disk_size.0,
        status_header: file.cache.status_header,
        lock_timeout: file.cache.lock_timeout.0,
    };
    if let Err(m) = crate::metrics::check_namespace(&file.metrics.namespace) {
        errs.push(loc.whole("metrics.namespace", m));
    }
    let metrics = MetricsSettings {
        namespace: file.metrics.namespace.clone(),
    };
    let tracing = super::traces::settings(&file.tracing, loc, &mut errs);
    let cluster = file
        .cluster
        .as_ref()
        .and_then(|c| cluster::cluster(c, loc, &mut errs));

    let sites = site::sites(&file.site, loc, &mut errs);
    if sites.is_empty() {
        errs.push(loc.whole("site", "no [[site]] configured: nothing to serve"));
    }

    if errs.is_empty() {
        Ok(Config {
            path: loc.path.to_path_buf(),
            source: Source::File(loc.path.to_path_buf()),
            server,
            log,
            transform,
            cache,
            metrics,
            tracing,
            cluster,
            sites,
        })
    } else {
        Err(errs)
    }
}
