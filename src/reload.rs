//! The supervisor: runs the origin health checks and reloads the configuration on SIGHUP.
//!
//! A reload re-reads the same file, validates it completely and builds a new routing table,
//! origin pools and limiters; only then does it swap them in, in one step (`ArcSwap`). Requests
//! in flight finish on the table they started with; connections are not touched. An invalid new
//! config is refused with a log line and the old one keeps serving. Listeners, the worker pool
//! and the cache are fixed at start-up (changing them needs a restart or a binary upgrade).

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::state::{Runtime, Shared};

/// The background service.
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// A supervisor over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Build(String),
}

/// Re-reads the config file (or the environment it came from) and swaps the runtime in; on
/// error nothing changes.
pub fn reload(shared: &Shared) -> Result<(), ReloadError> {
    let current = shared.runtime.load_full();
    let path = current.config.path.clone();
    let mut config: Config = crate::config::reload(&current.config).map_err(|errs| {
        ReloadError::Config(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    // What cannot change without a restart keeps its running value (and says so).
    let old = &current.config;
    if config.server.listen != old.server.listen
        || config.server.admin_listen != old.server.admin_listen
        || config.server.tls.is_some() != old.server.tls.is_some()
    {
        tracing::warn!(
            "reload: listener changes need a restart or a binary upgrade; keeping the old listeners"
        );
    }
    config.server = old.server.clone();
    config.transform = old.transform.clone();
    config.cache = old.cache.clone();
    let runtime = Runtime::build(Arc::new(config), &shared.metrics).map_err(ReloadError::Build)?;
    runtime.start_health_checks();
    let sites = runtime.config.sites.len();
    shared.runtime.store(Arc::new(runtime));
    tracing::info!(sites, config = %path.display(), "configuration reloaded");
    Ok(())
}

#[async_trait]
impl BackgroundService for Supervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        self.shared.runtime.load().start_health_checks();
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: reload disabled");
            let _ = shutdown.changed().await;
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    if let Err(e) = reload(&self.shared) {
                        tracing::error!(error = %e, "reload refused: the running configuration stays");
                        self.shared.metrics.reload_failures.inc();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
