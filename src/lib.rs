//! imgforge: an edge image gateway on Pingora.
//!
//! Layout (each module one concern; pure logic apart from I/O):
//! - [`config`]: TOML schema → validated runtime model (pure).
//! - [`imaging`]: the internal image service: fetch, transform, answer (edge proxies to it).
//! - [`imgproxy`]: imgproxy v4 URL API: grammar, options, presets, signatures, canonical form (pure).
//! - [`routing`]: Host + path prefix → site → route (pure).
//! - [`upstream`]: origin pools: load balancing, health checks, peer selection.
//! - [`fleet`]: fleet mode (`[cluster]`): shared rate limits and purges through Redis.
//! - [`edge`]: the Pingora `ProxyHttp` implementation, thin, delegating to the rooms above.
//! - [`cache`]: cache storage for pingora: bounded memory tier, persistent disk tier.
//! - [`admin`]: the admin listener: `/health`, `/readyz`, `/status`, `/metrics`.
//! - [`metrics`]: the Prometheus registry and the gateway's metric families.
//! - [`telemetry`]: log lines (request id on each), the access line, request spans, OTLP export.
//! - [`static_files`]: a local directory served as a site's origin (safe paths, ranges, validators).
//! - [`state`]: the routing table and backends shared by edge and admin, swappable as one.
//! - [`source`]: fetching source images (origin pool, local root, absolute URL) with limits.
//! - [`protect`]: rate limits, concurrency and connection caps, bearer auth, SSRF address guard.
//! - [`purge`]: purging this node's cache (admin or fleet), the fleet's purge listener.
//! - [`reload`]: the supervisor: origin health checks, SIGHUP reload.
//! - [`server`]: assembles Pingora services from a config and runs them; shutdown and drain.

#![forbid(unsafe_code)]

pub mod admin;
pub mod edge;
pub mod fleet;
pub mod imaging;
pub mod metrics;
pub mod protect;
pub mod purge;
pub mod reload;
pub mod routing;
pub mod server;
pub mod source;
pub mod state;
pub mod static_files;
pub mod telemetry;
pub mod upstream;

// The pure layers and the engine are crates of their own (crates/); their old paths stay valid.
pub use imgforge_cache as cache;
pub use imgforge_config as config;
pub use imgforge_imgproxy as imgproxy;
pub use imgforge_transform as transform;
