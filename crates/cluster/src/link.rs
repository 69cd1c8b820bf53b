//! The connection to Redis: made lazily on the first call (inside whatever tokio runtime makes
//! it), kept and re-made by the client library, the same command surface for standalone Redis
//! and Redis Cluster.
//!
//! - Standalone: redis-rs's `ConnectionManager` (one multiplexed connection that reconnects in
//!   the background after it breaks).
//! - Cluster: redis-rs's async `ClusterConnection` (one multiplexed connection per master,
//!   follows MOVED/ASK, refreshes its slot map). Its first connection is made by a background
//!   task so that no request waits for the slot discovery; a failed attempt is retried by a later
//!   call after a short back-off.
//!
//! Pub/Sub needs a dedicated connection: [`Link::pubsub`] opens one to the standalone server or
//! to one of the cluster's seed nodes (classic `PUBLISH` reaches every node of a Cluster).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};
use tokio::sync::watch;

use crate::error::{ClusterError, ErrorKind};
use crate::settings::{ClusterSettings, Endpoint};

/// A connection of either kind; cheap to clone (both are handles to shared multiplexers).
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

// One per process: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Standalone(Client),
    Cluster(ClusterClient),
}

/// Pause between two failed first-connection attempts to a Cluster.
const CLUSTER_RETRY: Duration = Duration::from_millis(500);

/// See the module doc.
pub(crate) struct Link {
    target: Target,
    /// Clients for Pub/Sub connections (the server, or each cluster seed node).
    pubsub_clients: Vec<Client>,
    connect_timeout: Duration,
    conn: watch::Sender<Option<Conn>>,
    connecting: Arc<AtomicBool>,
    next_attempt: Mutex<Option<Instant>>,
}

impl Link {
    /// Prepares the clients (parses the endpoint); connects nothing.
    pub(crate) fn new(settings: &ClusterSettings) -> Result<Self, ClusterError> {
        let invalid = |e: redis::RedisError| ClusterError::new(ErrorKind::Redis, e.to_string());
        let with_password = |url: &str| -> Result<redis::ConnectionInfo, ClusterError> {
            let info = url.into_connection_info().map_err(invalid)?;
            Ok(match &settings.password {
                Some(p) => {
                    let redis = info.redis_settings().clone().set_password(p);
                    info.set_redis_settings(redis)
                }
                None => info,
            })
        };
        let (target, pubsub_clients) = match &settings.endpoint {
            Endpoint::Standalone(url) => {
                let client = Client::open(with_password(url)?).map_err(invalid)?;
                (Target::Standalone(client.clone()), vec![client])
            }
            Endpoint::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|n| {
                        if n.contains("://") {
                            with_password(n)
                        } else {
                            with_password(&format!("redis://{n}"))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let cluster = ClusterClientBuilder::new(infos.clone())
                    .connection_timeout(settings.background_timeout)
                    .build()
                    .map_err(invalid)?;
                let clients = infos
                    .into_iter()
                    .map(Client::open)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                (Target::Cluster(cluster), clients)
            }
        };
        Ok(Self {
            target,
            pubsub_clients,
            connect_timeout: settings.background_timeout,
            conn: watch::Sender::new(None),
            connecting: Arc::new(AtomicBool::new(false)),
            next_attempt: Mutex::new(None),
        })
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The connection, waiting for a first one at most until `deadline`. Must run inside a
    /// tokio runtime (the client library spawns its I/O tasks on it).
    pub(crate) async fn get(&self, deadline: tokio::time::Instant) -> Result<Conn, ClusterError> {
        if let Some(c) = self.conn.borrow().as_ref() {
            return Ok(c.clone());
        }
        self.start_connecting();
        let mut rx = self.conn.subscribe();
        match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(c)) => c
                .as_ref()
                .cloned()
                .ok_or_else(|| ClusterError::new(ErrorKind::Connection, "not connected")),
            Ok(Err(_)) => Err(ClusterError::new(ErrorKind::Connection, "link closed")),
            Err(_) => Err(ClusterError::new(
                ErrorKind::Connection,
                "not connected to Redis yet",
            )),
        }
    }

    fn start_connecting(&self) {
        match &self.target {
            Target::Standalone(client) => {
                // Lazy: the manager connects on its first command and reconnects by itself.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(Duration::from_millis(500));
                self.conn.send_if_modified(|slot| {
                    if slot.is_some() {
                        return false;
                    }
                    match ConnectionManager::new_lazy_with_config(client.clone(), config) {
                        Ok(m) => {
                            *slot = Some(Conn::Standalone(m));
                            true
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "redis connection manager not created");
                            false
                        }
                    }
                });
            }
            Target::Cluster(client) => {
                {
                    let mut next = self.next_attempt.lock().unwrap_or_else(|p| p.into_inner());
                    if next.is_some_and(|t| Instant::now() < t) {
                        return;
                    }
                    if self.connecting.swap(true, Ordering::AcqRel) {
                        return;
                    }
                    *next = Some(Instant::now() + CLUSTER_RETRY);
                }
                let client = client.clone();
                let sender = self.conn.clone();
                let budget = self.connect_timeout * 3;
                let flag = FlagGuard(self.connecting.clone());
                tokio::spawn(async move {
                    let result = tokio::time::timeout(budget, client.get_async_connection()).await;
                    match result {
                        Ok(Ok(c)) => {
                            sender.send_replace(Some(Conn::Cluster(c)));
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "redis cluster: no connection"),
                        Err(_) => tracing::warn!("redis cluster: connecting timed out"),
                    }
                    drop(flag);
                });
            }
        }
    }

    /// A new connection for Pub/Sub, to the server or to the first cluster seed node that
    /// answers (starting with `start`, for rotation across reconnects).
    pub(crate) async fn pubsub(&self, start: usize) -> Result<redis::aio::PubSub, ClusterError> {
        let n = self.pubsub_clients.len();
        let mut last = ClusterError::new(ErrorKind::Connection, "no node to subscribe to");
        for i in 0..n {
            let client = &self.pubsub_clients[(start + i) % n];
            match tokio::time::timeout(self.connect_timeout, client.get_async_pubsub()).await {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(e)) => last = e.into(),
                Err(_) => last = ClusterError::timeout(self.connect_timeout),
            }
        }
        Err(last)
    }
}

/// Clears the connecting flag when the connecting task ends (or is dropped).
struct FlagGuard(Arc<AtomicBool>);

impl Drop for FlagGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
