//! Assembles the Pingora server from a config and runs it until shutdown.
//!
//! Services: the public proxy (plain and TLS listeners), the admin listener, one health-check
//! service per origin pool with checks, and a readiness probe. Shutdown has one path: a signal
//! marks the state as draining (readiness turns 503), Pingora stops accepting, and the process
//! exits as soon as no request is in flight, or when `grace_period` ends.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};
use pingora::services::listening::Service;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::Admin;
use crate::cache::lock::ObservedLock;
use crate::config::{Config, TransformSettings};
use crate::edge::connections::ConnectionCap;
use crate::edge::{Gateway, Scoped};
use crate::imaging::ImageService;
use crate::metrics::{Metrics, RegistrySettings};
use crate::reload::Supervisor;
use pingora::cache::lock::CacheKeyLockImpl;

use crate::state::{Cache, Runtime, Shared};
use crate::transform::{Engine, EngineSettings};

/// How the process was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Take over the listening sockets of a running old process (zero-downtime upgrade).
    pub upgrade: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// Builds every service and runs until a shutdown signal has been handled.
pub fn run(config: Config, opts: RunOptions) -> Result<(), StartError> {
    let config = Arc::new(config);
    if !opts.upgrade {
        check_listeners(&config)?;
    }
    let metrics = Metrics::new(&RegistrySettings {
        namespace: config.metrics.namespace.clone(),
        workers: config.transform.workers,
        queue: config.transform.queue,
    })
    .map_err(|e| StartError::Setup(format!("metrics: {e}")))?;
    let runtime = Runtime::build(config.clone(), &metrics).map_err(StartError::Setup)?;
    // libvips starts (and self-tests every output format) before anything listens.
    let engine = Engine::start_observed(engine_settings(&config.transform), metrics.job_observer())
        .map_err(|e| StartError::Setup(format!("transform engine: {e}")))?;
    let image_socket = image_socket_path(&config.server.upgrade_sock);
    remove_stale_sockets(&image_socket);
    let cache = build_cache(&config.cache, &metrics)?;
    let generations = crate::cache::generations::Generations::load(
        config
            .cache
            .disk_path
            .as_ref()
            .map(|d| d.join("purge-generations")),
    );
    let fleet = match &config.cluster {
        Some(c) => Some(crate::fleet::Fleet::new(c, &metrics.fleet).map_err(StartError::Setup)?),
        None => None,
    };
    let shared = Shared::new(
        runtime,
        metrics,
        image_socket.clone(),
        cache,
        generations,
        fleet,
    );

    let mut conf = ServerConf::new().ok_or_else(|| StartError::Setup("server conf".into()))?;
    conf.threads = config.server.threads;
    conf.grace_period_seconds = Some(config.server.grace_period.as_secs_f64().ceil() as u64);
    conf.graceful_shutdown_timeout_seconds = Some(1);
    conf.upgrade_sock = config.server.upgrade_sock.clone();
    conf.pid_file = config.server.pid_file.clone();
    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    // The proxy app, each request kept inside its span (`Scoped`), behind the connection cap
    // (Pingora has none of its own).
    let edge = ConnectionCap::new(
        Scoped::new(pingora::proxy::http_proxy(
            &server.configuration,
            Gateway::new(shared.clone()),
        )),
        config.server.max_connections as usize,
        &shared.metrics.connections,
    );
    let mut proxy = Service::new("imgforge edge".to_string(), edge);
    for addr in &config.server.listen {
        proxy.add_tcp(&addr.to_string());
    }
    if let Some(tls) = &config.server.tls {
        for addr in &tls.listen {
            proxy
                .add_tls(
                    &addr.to_string(),
                    &tls.cert.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .map_err(|e| StartError::Setup(format!("TLS listener {addr}: {e}")))?;
        }
    }
    proxy.threads = Some(config.server.threads);
    server.add_service(proxy);

    if let Some(addr) = config.server.admin_listen {
        let mut admin = Service::new("imgforge admin".to_string(), Admin::new(shared.clone()));
        admin.add_tcp(&addr.to_string());
        admin.threads = Some(1);
        server.add_service(admin);
    }
    let mut images = Service::new(
        "imgforge images".to_string(),
        ImageService::new(shared.clone(), engine),
    );
    images.add_uds(
        &image_socket.to_string_lossy(),
        Some(std::os::unix::fs::PermissionsExt::from_mode(0o600)),
    );
    images.threads = Some(config.server.threads);
    server.add_service(images);
    server.add_service(background_service(
        "supervisor",
        Supervisor::new(shared.clone()),
    ));
    let probe_addr = config
        .server
        .listen
        .first()
        .or_else(|| config.server.tls.as_ref().and_then(|t| t.listen.first()))
        .copied();
    if shared.fleet.is_some() {
        let cursor_file = config
            .cache
            .disk_path
            .as_ref()
            .map(|d| d.join("fleet-purge-cursor"));
        server.add_service(background_service(
            "fleet purges",
            crate::purge::FleetPurges::new(shared.clone(), cursor_file),
        ));
    }
    server.add_service(background_service(
        "readiness probe",
        ReadinessProbe {
            shared: shared.clone(),
            addr: probe_addr,
        },
    ));

    tracing::info!(
        listen = ?config.server.listen,
        admin = ?config.server.admin_listen,
        sites = config.sites.len(),
        config = %config.path.display(),
        "imgforge starting"
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals {
            shared,
            grace: config.server.grace_period,
        }),
    });
    crate::telemetry::shutdown();
    Ok(())
}

fn build_cache(
    c: &crate::config::CacheSettings,
    metrics: &Metrics,
) -> Result<Option<Cache>, StartError> {
    if !c.enabled() {
        return Ok(None);
    }
    let storage = crate::cache::build(&c.into()).map_err(|e| StartError::Setup(e.to_string()))?;
    let outcomes = metrics.cache_lock_wait_outcomes.clone();
    let report = Box::new(move |status| {
        outcomes
            .with_label_values(&[crate::cache::lock::outcome_label(status)])
            .inc();
    });
    // Leaked like the storage: pingora-cache wants `&'static` and both live as long as the process.
    let lock: &'static CacheKeyLockImpl =
        Box::leak(Box::new(ObservedLock::new(c.lock_timeout, report)));
    Ok(Some(Cache { storage, lock }))
}

fn engine_settings(t: &TransformSettings) -> EngineSettings {
    let pixels = |mp: f64| (mp * 1_000_000.0).round() as u64;
    EngineSettings {
        workers: t.workers,
        queue: t.queue,
        timeout: t.timeout,
        max_src_resolution: pixels(t.max_src_resolution_mp),
        max_animation_frames: t.max_animation_frames,
        max_animation_frame_resolution: pixels(t.max_animation_frame_resolution_mp),
        max_result_dimension: t.max_result_dimension,
        avif_speed: t.avif_speed,
        jpeg_progressive: t.jpeg_progressive,
        formats: t.formats.clone(),
    }
}

/// The image service's socket: private to this process (the pid keeps an upgrading successor
/// from colliding with it), next to the upgrade socket.
fn image_socket_path(upgrade_sock: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(upgrade_sock)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("/tmp"));
    dir.join(format!("imgforge-images-{}.sock", std::process::id()))
}

/// Removes image-service sockets left by processes that no longer run (and one with our own
/// pid, which would make the bind fail); a live predecessor's socket (during an upgrade) stays.
fn remove_stale_sockets(ours: &std::path::Path) {
    let _ = std::fs::remove_file(ours);
    let Some(dir) = ours.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("imgforge-images-"))
            .and_then(|n| n.strip_suffix(".sock"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Fails early, with the address, when a public or admin listener cannot be bound: Pingora would
/// otherwise panic inside a service task and keep running without that listener.
fn check_listeners(config: &Config) -> Result<(), StartError> {
    let mut addrs: Vec<SocketAddr> = config.server.listen.clone();
    addrs.extend(config.server.admin_listen);
    if let Some(tls) = &config.server.tls {
        addrs.extend(tls.listen.iter().copied());
    }
    for addr in addrs {
        std::net::TcpListener::bind(addr).map_err(|source| StartError::Listen { addr, source })?;
    }
    Ok(())
}

/// How long readiness waits for the fleet's purge listener to catch up at start.
const FLEET_SYNC_WAIT: Duration = Duration::from_secs(3);

/// Turns `/readyz` green once the first public listener accepts connections.
struct ReadinessProbe {
    shared: Arc<Shared>,
    addr: Option<SocketAddr>,
}

#[async_trait]
impl BackgroundService for ReadinessProbe {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut addr) = self.addr else {
            self.shared.set_ready();
            return;
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let started = std::time::Instant::now();
        loop {
            let ok = tokio::task::spawn_blocking(move || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            })
            .await
            .unwrap_or(false);
            // With `[cluster]`, purges missed while this node was away are applied first, so
            // that it never serves what the fleet purged; Redis being down delays readiness by
            // FLEET_SYNC_WAIT at most (readiness does not depend on Redis).
            let synced = self.shared.purges_synced() || started.elapsed() > FLEET_SYNC_WAIT;
            if ok && synced {
                // Logged first: a client that saw ready must not see start-up lines after its own.
                tracing::info!(%addr, "imgforge is serving");
                self.shared.set_ready();
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Signal handling: SIGTERM drains, SIGQUIT hands the listeners to a new process, SIGINT stops
/// at once.
struct Signals {
    shared: Arc<Shared>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => {
                tracing::info!("SIGQUIT: handing listeners to the new process, then draining");
                self.shared.set_draining();
                // Pingora keeps accepting for its fixed 5 s hand-over window, then closes.
                exit_when_drained(self.shared.clone(), UPGRADE_HANDOVER, self.grace);
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                tracing::info!(grace_period_ms = self.grace.as_millis() as u64, "SIGTERM: draining");
                self.shared.set_draining();
                exit_when_drained(self.shared.clone(), Duration::ZERO, self.grace);
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping now");
                ShutdownSignal::FastShutdown
            }
        }
    }
}

/// How long Pingora's old process keeps its listeners after handing them over (its
/// `CLOSE_TIMEOUT`, not configurable in 0.9.1).
const UPGRADE_HANDOVER: Duration = Duration::from_secs(5);

/// Pingora waits out the whole grace period even when idle; exit as soon as nothing is in flight
/// once the listeners are closed (`listening_for`), at the latest `grace` later.
fn exit_when_drained(shared: Arc<Shared>, listening_for: Duration, grace: Duration) {
    // A connection accepted just before the listeners closed is not a request yet (its header
    // may still be on the way), so "drained" means no request in flight and no connection open
    // (idle keep-alive ones are closed by the edge's cleanup, see `edge::connections`) for a
    // whole second.
    const QUIET: Duration = Duration::from_secs(1);
    const POLL: Duration = Duration::from_millis(25);
    std::thread::spawn(move || {
        std::thread::sleep(listening_for + Duration::from_millis(200));
        let started = Instant::now();
        let mut idle_since: Option<Instant> = None;
        loop {
            let in_flight = shared.metrics.in_flight.get();
            if in_flight > 0 || shared.metrics.connections.open.get() > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= QUIET {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "drained: exiting"
                );
                crate::telemetry::shutdown();
                std::process::exit(0);
            }
            if started.elapsed() >= grace {
                tracing::warn!(in_flight, "grace period over with requests in flight");
                return;
            }
            std::thread::sleep(POLL);
        }
    });
}
