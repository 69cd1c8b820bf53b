//! The [`Coordinator`]: one per process, cheap to clone. It owns the connection, the circuit
//! breaker, the deny cache and the counters; each feature (rate limits, purges, fill locks) adds
//! its methods in its own module. Every Redis call goes through [`Coordinator::call`], which
//! applies the budget, the breaker and the bookkeeping in one place.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::breaker::{Admission, Breaker, BreakerState, Transition};
use crate::bucket::DenyCache;
use crate::error::ClusterError;
use crate::events::{ListenerShared, ListenerStatus};
use crate::link::{Conn, Link};
use crate::observe::{Counters, NoObserver, Observer, Op, Stats};
use crate::settings::{ClusterSettings, InvalidSettings, Problem};

/// Coordination of one node with the fleet through Redis. See the crate doc for the wiring.
///
/// Creating one touches no network: the connection is made by the first call, on the tokio
/// runtime that makes it (the client library's I/O tasks live there, so make the first call from
/// a runtime that lives as long as the process).
#[derive(Clone)]
pub struct Coordinator {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: ClusterSettings,
    pub(crate) link: Link,
    pub(crate) breaker: Breaker,
    pub(crate) deny: DenyCache,
    pub(crate) counters: Counters,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) keys: Keys,
    health: Mutex<Health>,
    pub(crate) listener: Arc<ListenerShared>,
}

/// Redis key names, all under the configured prefix.
pub(crate) struct Keys {
    prefix: String,
    /// `{prefix:purge}:…`: one hash tag, so the purge script's keys share a Cluster slot.
    pub(crate) purge_state: String,
    pub(crate) purge_generations: String,
    pub(crate) purge_log: String,
    pub(crate) purge_channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            purge_state: format!("{{{prefix}:purge}}:state"),
            purge_generations: format!("{{{prefix}:purge}}:generations"),
            purge_log: format!("{{{prefix}:purge}}:log"),
            purge_channel: format!("{prefix}:purge"),
        }
    }

    /// A rate-limit bucket: `prefix:rl:{scope client}`. The hash tag is the whole bucket
    /// identity, so that the buckets of one busy route spread over every Cluster shard (the
    /// script touches this one key only).
    pub(crate) fn rate(&self, scope: &str, client: &str) -> String {
        format!("{}:rl:{{{scope} {client}}}", self.prefix)
    }

    /// A fill lock: `prefix:lock:{key}`.
    pub(crate) fn lock(&self, key: &str) -> String {
        format!("{}:lock:{{{key}}}", self.prefix)
    }
}

#[derive(Debug, Default)]
struct Health {
    last_ok: Option<Instant>,
    last_error: Option<(Instant, String)>,
    consecutive_failures: u32,
}

/// Whether the connection works, judged by the last call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// No call was made yet (connections are made lazily).
    Idle,
    /// The last call went through.
    Up,
    /// The last call failed.
    Down,
}

impl ConnectionState {
    /// `idle`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Up => "up",
            ConnectionState::Down => "down",
        }
    }
}

/// What `/status` shows about the fleet connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The endpoint, passwords masked.
    pub endpoint: String,
    /// `standalone` or `cluster`.
    pub mode: &'static str,
    /// This node's id.
    pub node_id: String,
    /// Judged by the last call.
    pub connection: ConnectionState,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// While the breaker is open: how long until the next probe.
    pub breaker_retry_in: Option<Duration>,
    /// How long ago a call last went through.
    pub last_ok_ago: Option<Duration>,
    /// The last failure: how long ago, and what.
    pub last_error: Option<(Duration, String)>,
    /// Calls failed in a row (any budget).
    pub consecutive_failures: u32,
    /// The purge listener, once started.
    pub purge_listener: Option<ListenerStatus>,
    /// The counters.
    pub stats: Stats,
}

impl Coordinator {
    /// A coordinator for `settings` (validated first). Connects nothing yet.
    pub fn new(settings: ClusterSettings) -> Result<Self, InvalidSettings> {
        Self::with_observer(settings, Arc::new(NoObserver))
    }

    /// [`Coordinator::new`] reporting every event to `observer` (metrics).
    pub fn with_observer(
        settings: ClusterSettings,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, InvalidSettings> {
        settings.validate()?;
        let link = Link::new(&settings).map_err(|e| InvalidSettings {
            problems: vec![Problem {
                field: "redis",
                message: e.to_string(),
            }],
        })?;
        // A probe that reports nothing for this long was abandoned by its caller.
        let probe_grace = settings.timeout * 2;
        Ok(Self {
            inner: Arc::new(Inner {
                breaker: Breaker::new(settings.breaker, probe_grace),
                deny: DenyCache::new(settings.deny_cache_keys),
                counters: Counters::default(),
                observer,
                keys: Keys::new(&settings.key_prefix),
                health: Mutex::new(Health::default()),
                listener: Arc::new(ListenerShared::default()),
                link,
                settings,
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &ClusterSettings {
        &self.inner.settings
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.settings.node_id
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let now = Instant::now();
        self.inner.counters.snapshot(
            self.inner.breaker.state(now),
            self.inner.breaker.opened_total(),
        )
    }

    /// The connection's state for `/status` (no Redis call).
    pub fn status(&self) -> Status {
        let now = Instant::now();
        let inner = &self.inner;
        let health = inner.health.lock().unwrap_or_else(|p| p.into_inner());
        let connection = match (health.last_ok, &health.last_error) {
            (None, None) => ConnectionState::Idle,
            (Some(_), None) => ConnectionState::Up,
            (None, Some(_)) => ConnectionState::Down,
            (Some(ok), Some((err, _))) => {
                if ok >= *err {
                    ConnectionState::Up
                } else {
                    ConnectionState::Down
                }
            }
        };
        let breaker = inner.breaker.state(now);
        Status {
            endpoint: inner.settings.endpoint.to_string(),
            mode: if inner.link.is_cluster() {
                "cluster"
            } else {
                "standalone"
            },
            node_id: inner.settings.node_id.clone(),
            connection,
            breaker,
            breaker_retry_in: inner
                .breaker
                .open_until()
                .map(|t| t.saturating_duration_since(now))
                .filter(|d| !d.is_zero()),
            last_ok_ago: health.last_ok.map(|t| now.saturating_duration_since(t)),
            last_error: health
                .last_error
                .as_ref()
                .map(|(t, e)| (now.saturating_duration_since(*t), e.clone())),
            consecutive_failures: health.consecutive_failures,
            purge_listener: inner.listener.status(),
            stats: self.stats(),
        }
    }

    /// One round trip to Redis (background budget, no breaker): how long it took.
    pub async fn ping(&self) -> Result<Duration, ClusterError> {
        let start = Instant::now();
        self.call(Op::PurgeSync, Budget::Background, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await?;
        Ok(start.elapsed())
    }

    /// Runs one Redis operation `f` on the connection, within the budget of `budget`:
    /// request-path calls also pass the circuit breaker and feed it. Records latency, errors
    /// and health; reports to the observer.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        op: Op,
        budget: Budget,
        f: F,
    ) -> Result<T, ClusterError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let inner = &self.inner;
        let start = Instant::now();
        let (limit, guarded) = match budget {
            Budget::Request => (inner.settings.timeout, true),
            Budget::Background => (inner.settings.background_timeout, false),
        };
        if guarded && inner.breaker.admit(start) == Admission::Skip {
            return Err(ClusterError::breaker_open());
        }
        let deadline = tokio::time::Instant::from_std(start + limit);
        let work = async {
            let conn = inner.link.get(deadline).await?;
            f(conn).await.map_err(ClusterError::from)
        };
        let result = match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(ClusterError::timeout(limit)),
        };
        let elapsed = start.elapsed();
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.kind());
        inner.counters.call(elapsed, outcome);
        inner.observer.call(op, elapsed, outcome);
        self.record_health(&result);
        if guarded {
            let transition = match &result {
                Ok(_) => inner.breaker.success(),
                Err(_) => inner.breaker.failure(Instant::now()),
            };
            match transition {
                Transition::Opened => {
                    tracing::warn!(
                        op = op.as_str(),
                        open_for = ?inner.settings.breaker.open_for,
                        "redis circuit breaker opened"
                    );
                    inner.observer.breaker(BreakerState::Open);
                }
                Transition::Closed => {
                    tracing::info!("redis circuit breaker closed");
                    inner.observer.breaker(BreakerState::Closed);
                }
                Transition::None => {}
            }
        }
        result
    }

    fn record_health<T>(&self, result: &Result<T, ClusterError>) {
        let mut h = self.inner.health.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match result {
            Ok(_) => {
                h.last_ok = Some(now);
                h.consecutive_failures = 0;
            }
            Err(e) => {
                h.last_error = Some((now, e.to_string()));
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            }
        }
    }

    /// A fresh random token (lock owners, purge history ids).
    pub(crate) fn random_token(&self) -> String {
        let a = RandomState::new().hash_one((Instant::now(), std::process::id()));
        let b = RandomState::new().hash_one(a);
        format!("{a:016x}{b:016x}")
    }
}

/// Which budget a call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// `timeout`, behind the circuit breaker: rate limits and fill locks.
    Request,
    /// `background_timeout`, no breaker: purges and their listener.
    Background,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("endpoint", &self.inner.settings.endpoint)
            .field("node_id", &self.inner.settings.node_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purge::PurgeEvent;
    use crate::ratelimit::Quota;
    use crate::settings::Endpoint;

    fn assert_send<T: Send>(_: &T) {}

    /// Pingora's phases are `async_trait` methods: every future the gateway awaits must be
    /// `Send`, and the coordinator must be shareable across its threads.
    #[test]
    fn futures_are_send_and_the_coordinator_is_shareable() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Coordinator>();
        let c = Coordinator::new(ClusterSettings::new(
            Endpoint::Standalone("redis://127.0.0.1:1".into()),
            "n",
        ))
        .expect("valid");
        let q = Quota {
            per_second: 1.0,
            burst: 1,
        };
        assert_send(&c.rate_limit("/", "c", q));
        assert_send(&c.try_lock("k", Duration::from_secs(1)));
        assert_send(&c.wait_unlocked("k", Duration::from_secs(1)));
        assert_send(&c.release_lock("k", "t"));
        assert_send(&c.publish_purge(&PurgeEvent::All));
        assert_send(&c.source_generation("s", "/a"));
        assert_send(&c.ping());
        // Creating one touched nothing.
        assert_eq!(c.status().connection, ConnectionState::Idle);
    }

    #[test]
    fn key_names() {
        let k = Keys::new("imgforge");
        assert_eq!(
            k.rate("/img", "203.0.113.9"),
            "imgforge:rl:{/img 203.0.113.9}"
        );
        assert_eq!(k.lock("abc"), "imgforge:lock:{abc}");
        assert_eq!(k.purge_state, "{imgforge:purge}:state");
        assert_eq!(k.purge_log, "{imgforge:purge}:log");
        assert_eq!(k.purge_channel, "imgforge:purge");
    }
}
