//! Fleet coordination for imgforge over Redis (standalone or Redis Cluster): shared rate
//! limits, purge fan-out with purge generations, and fill locks across nodes.
//!
//! Independent of the rest of imgforge: the gateway converts its config into
//! [`ClusterSettings`], builds one [`Coordinator`] and calls it from its request phases.
//! `docs/cluster.md` describes the topology, the failure modes and the purge guarantee.
//!
//! # Layout
//! - [`settings`]: the runtime model of `[cluster]` and its pure validation.
//! - `coordinator`: the [`Coordinator`], the one place every Redis call passes (budget,
//!   breaker, counters), and [`Status`].
//! - `link`: the lazy connection (standalone `ConnectionManager` or `ClusterConnection`).
//! - `breaker`: the circuit breaker (pure).
//! - [`ratelimit`]: GCRA in one Lua script on Redis's clock, the local deny cache, [`Verdict`].
//! - [`purge`]: publishing purges, the listener and its [`PurgeCursor`].
//! - [`lock`]: fill locks.
//! - [`observe`]: the [`Observer`] trait and [`Stats`] counters for metrics.
//!
//! # Wiring (what the gateway does)
//! - **Rate limits** (request filter): `coordinator.rate_limit(route, &client_ip, quota).await`
//!   then `.resolve(|| local_limiter.check(&client_ip, now))`: one call site applies
//!   `on_error`. The global cap is the scope `"*"` with the client `""`.
//! - **Purges** (admin): apply locally, then `publish_purge(&event)`; an error means "this
//!   node only". A task started at boot runs `purge_listener(persisted_cursor)` and applies
//!   each [`PurgeNotice`] to the memory and disk tiers, persisting [`PurgeNotice::cursor`].
//! - **Generations** (cache lookups): variant keys take the node's local generation, which the
//!   node bumps for every purge of the source that reaches it; no Redis call per hit.
//! - **Fill locks** (image misses): `try_lock(key, ttl)`; the winner transforms and releases,
//!   losers `wait_unlocked(key, max_wait)` then read the shared tier or transform anyway.
//! - **Metrics and `/status`**: an [`Observer`] fed to [`Coordinator::with_observer`], and
//!   [`Coordinator::status`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod breaker;
mod bucket;
mod coordinator;
mod error;
mod events;
mod link;
pub mod lock;
pub mod observe;
pub mod purge;
pub mod ratelimit;
mod script;
pub mod settings;

pub use breaker::BreakerState;
pub use coordinator::{ConnectionState, Coordinator, Status};
pub use error::{ClusterError, ErrorKind};
pub use lock::{FillLock, LockAttempt, WaitOutcome};
pub use observe::{FallbackReason, NoObserver, Observer, Op, Stats};
pub use purge::{
    GenerationTable, ListenerStatus, PurgeCursor, PurgeEvent, PurgeKind, PurgeListener,
    PurgeNotice, PurgeReceipt, PurgeRecord, SourceGeneration,
};
pub use ratelimit::{Decision, Fallback, Quota, Verdict};
pub use settings::{
    BreakerSettings, ClusterSettings, Endpoint, InvalidSettings, OnError, Problem, default_node_id,
};
