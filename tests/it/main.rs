//! The integration tests: the real `imgforge` binary on ephemeral ports against real loopback
//! origins, plus checks of the shipped configuration, deployment and monitoring files.
//!
//! One test binary with a module per area, so that Pingora and libvips are linked once for all
//! of them. The tests of every area run side by side in this one process, so a test never
//! changes what the process shares (its environment, working directory or signal handlers):
//! what a child process needs is set on its own `Command`.
//!
//! Run one area with a filter on its module path, e.g. `cargo test --test it -- cache::`.

mod common;

mod admin;
mod bad_input;
mod cache;
mod config_docs;
mod config_errors;
mod connections;
mod deploy_files;
mod env_start;
mod fleet;
mod hostile_origin;
mod imgproxy_routes;
mod local_root;
mod metrics;
mod monitoring_files;
// Needs the exporter: `cargo test --features otlp --test it -- otlp::`.
#[cfg(feature = "otlp")]
mod otlp;
mod passthrough;
mod playground;
mod query_api;
mod rate_limits;
mod reload;
mod request_logs;
mod routing;
mod shutdown;
mod tls;
mod transform_e2e;
mod upstream;
