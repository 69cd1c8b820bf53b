//! Origin pools: load balancing, active health checks and peer construction.
//!
//! A [`Pool`] wraps a Pingora `LoadBalancer` (round robin or Ketama consistent hash). Its health
//! checks run as a task ([`spawn_health_checks`]) that ends when the pool is dropped, so a config
//! reload can replace pools.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::{Consistent, RoundRobin};
use pingora::lb::{Backend, LoadBalancer};
use pingora::prelude::HttpPeer;

use crate::config::schema::LbAlgorithm;
use crate::config::{HealthCheckSettings, UpstreamSettings};

enum Balancer {
    RoundRobin(Arc<LoadBalancer<RoundRobin>>),
    Hash(Arc<LoadBalancer<Consistent>>),
}

/// A site's origin servers.
pub struct Pool {
    site: String,
    settings: UpstreamSettings,
    balancer: Balancer,
    /// Written server name by address, for health reports.
    names: BTreeMap<SocketAddr, String>,
}

/// One server's state, for `/status` and metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerHealth {
    pub server: String,
    pub address: String,
    pub healthy: bool,
}

impl Pool {
    /// Builds the pool. Its health checks run once [`spawn_health_checks`] is called (they stop
    /// by themselves when the pool is dropped, e.g. after a config reload).
    pub fn new(site: &str, settings: &UpstreamSettings) -> std::io::Result<Arc<Self>> {
        let addrs: Vec<SocketAddr> = settings.servers.iter().map(|s| s.addr).collect();
        let names = settings
            .servers
            .iter()
            .map(|s| (s.addr, s.written.clone()))
            .collect();
        let hc = settings
            .health_check
            .as_ref()
            .map(|h| health_check(settings, h));
        let balancer = match settings.lb {
            LbAlgorithm::RoundRobin => Balancer::RoundRobin(balancer::<RoundRobin>(&addrs, hc)?),
            LbAlgorithm::ConsistentHash => Balancer::Hash(balancer::<Consistent>(&addrs, hc)?),
        };
        Ok(Arc::new(Self {
            site: site.to_string(),
            settings: settings.clone(),
            balancer,
            names,
        }))
    }

    async fn check_once(&self) {
        match &self.balancer {
            Balancer::RoundRobin(lb) => lb.backends().run_health_check(true).await,
            Balancer::Hash(lb) => lb.backends().run_health_check(true).await,
        }
    }

    /// The pool's settings.
    pub fn settings(&self) -> &UpstreamSettings {
        &self.settings
    }

    /// Picks a server for `key` (ignored by round robin), skipping `tried`. Healthy servers are
    /// preferred; when none is left, an untried unhealthy one is returned rather than failing
    /// outright (health checks can lag behind a recovery).
    pub fn select(&self, key: &[u8], tried: &[SocketAddr]) -> Option<SocketAddr> {
        let untried = |b: &Backend| b.addr.as_inet().is_some_and(|a| !tried.contains(a));
        let max = self.names.len().max(1) * 4;
        let pick = |accept: &dyn Fn(&Backend, bool) -> bool| match &self.balancer {
            Balancer::RoundRobin(lb) => lb.select_with(key, max, accept),
            Balancer::Hash(lb) => lb.select_with(key, max, accept),
        };
        pick(&|b, healthy| healthy && untried(b))
            .or_else(|| pick(&|b, _| untried(b)))
            .and_then(|b| b.addr.as_inet().copied())
    }

    /// The peer for `addr`, with this pool's timeouts and TLS settings.
    pub fn peer(&self, addr: SocketAddr) -> HttpPeer {
        let s = &self.settings;
        let sni = if s.tls {
            s.sni.clone().unwrap_or_else(|| {
                self.settings
                    .servers
                    .iter()
                    .find(|x| x.addr == addr)
                    .map(|x| x.host.clone())
                    .unwrap_or_default()
            })
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(addr, s.tls, sni);
        peer.options.connection_timeout = Some(s.connect_timeout);
        peer.options.read_timeout = Some(s.read_timeout);
        peer.options.write_timeout = Some(s.read_timeout);
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        peer.options.verify_cert = s.verify_cert;
        peer.options.verify_hostname = s.verify_cert;
        peer
    }

    /// Health of every server (servers are healthy until a check says otherwise).
    pub fn health(&self) -> Vec<ServerHealth> {
        let backends = match &self.balancer {
            Balancer::RoundRobin(lb) => lb.backends(),
            Balancer::Hash(lb) => lb.backends(),
        };
        backends
            .get_backend()
            .iter()
            .map(|b| {
                let addr = b.addr.as_inet().copied();
                ServerHealth {
                    server: addr
                        .and_then(|a| self.names.get(&a).cloned())
                        .unwrap_or_else(|| b.addr.to_string()),
                    address: b.addr.to_string(),
                    healthy: backends.ready(b),
                }
            })
            .collect()
    }

    /// The site this pool belongs to.
    pub fn site(&self) -> &str {
        &self.site
    }
}

type Check = Box<dyn HealthCheck + Send + Sync + 'static>;

fn balancer<S>(addrs: &[SocketAddr], hc: Option<Check>) -> std::io::Result<Arc<LoadBalancer<S>>>
where
    S: pingora::lb::selection::BackendSelection + Send + Sync + 'static,
    S::Iter: pingora::lb::selection::BackendIter,
{
    let mut lb = LoadBalancer::<S>::try_from_iter(addrs.iter().copied())?;
    if let Some(check) = hc {
        lb.set_health_check(check);
    }
    Ok(Arc::new(lb))
}

/// Runs `pool`'s active health checks every interval on the current tokio runtime, until the
/// pool is dropped (a reload that replaces it ends its checks).
pub fn spawn_health_checks(pool: &Arc<Pool>) {
    let Some(interval) = pool.settings.health_check.as_ref().map(|h| h.interval) else {
        return;
    };
    let weak = Arc::downgrade(pool);
    tokio::spawn(async move {
        loop {
            let Some(pool) = weak.upgrade() else { break };
            pool.check_once().await;
            drop(pool);
            tokio::time::sleep(interval).await;
        }
    });
}

fn health_check(up: &UpstreamSettings, h: &HealthCheckSettings) -> Check {
    let host = up
        .host_header
        .clone()
        .or_else(|| up.servers.first().map(|s| s.host.clone()))
        .unwrap_or_default();
    match &h.path {
        Some(path) => {
            let mut hc = HttpHealthCheck::new(&host, up.tls);
            if let Ok(mut req) = pingora::http::RequestHeader::build("GET", path.as_bytes(), None) {
                let _ = req.insert_header("Host", &host);
                let _ = req.insert_header("User-Agent", "imgforge-health-check");
                hc.req = req;
            }
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc.peer_template.options.read_timeout = Some(h.timeout);
            hc.peer_template.options.verify_cert = up.verify_cert;
            hc.consecutive_failure = h.consecutive_failures;
            hc.consecutive_success = h.consecutive_successes;
            hc.validator = Some(Box::new(|resp| {
                if resp.status.is_success() {
                    Ok(())
                } else {
                    pingora::Error::e_explain(
                        pingora::ErrorType::CustomCode("health check status", resp.status.as_u16()),
                        "non-2xx health check response",
                    )
                }
            }));
            Box::new(Logged(Box::new(hc)))
        }
        None => {
            let mut hc = if up.tls {
                TcpHealthCheck::new_tls(&host)
            } else {
                TcpHealthCheck::new()
            };
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc.consecutive_failure = h.consecutive_failures;
            hc.consecutive_success = h.consecutive_successes;
            Box::new(Logged(hc))
        }
    }
}

/// Logs every state change of a server, which operators want to see next to the access log.
struct Logged(Check);

#[async_trait]
impl HealthCheck for Logged {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        self.0.check(target).await
    }
    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if healthy {
            tracing::info!(server = %target.addr, "origin server healthy again");
        } else {
            tracing::warn!(server = %target.addr, "origin server failed its health check");
        }
        self.0.health_status_change(target, healthy).await
    }
    fn health_threshold(&self, success: bool) -> usize {
        self.0.health_threshold(success)
    }
}
