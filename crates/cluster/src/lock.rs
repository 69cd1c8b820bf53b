//! Fill locks across nodes: concurrent misses for one variant on different nodes cause one
//! transform. `SET key token NX PX ttl` takes the lock (the token names this node and is unique
//! per lock, so two requests of one node never release each other's lock); a Lua
//! compare-and-delete releases it only for its owner; the expiry frees it if the owner dies.
//! Losers poll for the release within a bounded wait (keyspace notifications would need a
//! server setting that managed Redis services often forbid; a poll every 5–50 ms costs a few
//! cheap calls per waiting request).
//!
//! A lock is an optimisation, never a correctness condition: on any error the caller transforms
//! anyway.

use std::sync::LazyLock;
use std::time::Duration;

use crate::script::Lua;

use crate::coordinator::{Budget, Coordinator};
use crate::error::ClusterError;
use crate::observe::Op;

static UNLOCK: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("scripts/unlock.lua")));

/// The outcome of [`Coordinator::try_lock`].
#[derive(Debug)]
#[must_use]
pub enum LockAttempt {
    /// This request fills the key; release the lock when done.
    Acquired(FillLock),
    /// Another request (this node's or another's) holds it: wait with
    /// [`Coordinator::wait_unlocked`], then read the shared tier or fill anyway.
    Busy,
}

/// The outcome of [`Coordinator::wait_unlocked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The lock is gone (released, or expired with its owner).
    Unlocked,
    /// Still held after the whole wait.
    TimedOut,
    /// Redis could not tell (error, timeout, open breaker).
    Unavailable(ClusterError),
}

/// A held fill lock. Release it with [`FillLock::release`]; dropping it unreleased releases it
/// from a spawned task (when inside a tokio runtime), and in any case it expires with its TTL.
#[derive(Debug)]
pub struct FillLock {
    coordinator: Coordinator,
    key: String,
    redis_key: String,
    token: String,
    released: bool,
}

impl FillLock {
    /// The key as given to [`Coordinator::try_lock`].
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The owner token stored in Redis (`node_id/random`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Releases the lock if this owner still holds it: `Ok(false)` means it had expired (and
    /// may belong to another owner now, which is left alone).
    pub async fn release(mut self) -> Result<bool, ClusterError> {
        self.released = true;
        release(&self.coordinator, &self.redis_key, &self.token).await
    }
}

impl Drop for FillLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let c = self.coordinator.clone();
            let key = std::mem::take(&mut self.redis_key);
            let token = std::mem::take(&mut self.token);
            handle.spawn(async move {
                let _ = release(&c, &key, &token).await;
            });
        }
    }
}

async fn release(c: &Coordinator, redis_key: &str, token: &str) -> Result<bool, ClusterError> {
    let n: i64 = c
        .call(Op::LockRelease, Budget::Request, |mut conn| async move {
            UNLOCK
                .run(&mut conn, 1, |c| {
                    c.arg(redis_key).arg(token);
                })
                .await
        })
        .await?;
    Ok(n == 1)
}

/// First and longest pause between two polls of [`Coordinator::wait_unlocked`].
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(50);

impl Coordinator {
    /// Tries to take the fill lock of `key` (e.g. the variant's cache-key hash) for `ttl` (make
    /// it longer than a transform may take). One call within `timeout`, behind the breaker.
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> Result<LockAttempt, ClusterError> {
        let redis_key = self.inner.keys.lock(key);
        let token = format!("{}/{}", self.inner.settings.node_id, self.random_token());
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .call(Op::LockAcquire, Budget::Request, |mut conn| {
                let (k, t) = (redis_key.clone(), token.clone());
                async move {
                    redis::cmd("SET")
                        .arg(k)
                        .arg(t)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let acquired = set.is_some();
        self.inner.counters.lock(acquired);
        Ok(if acquired {
            LockAttempt::Acquired(FillLock {
                coordinator: self.clone(),
                key: key.to_string(),
                redis_key,
                token,
                released: false,
            })
        } else {
            LockAttempt::Busy
        })
    }

    /// Releases the lock of `key` if `token` owns it (what [`FillLock::release`] does; for an
    /// owner that kept only the token). `Ok(false)`: not the owner, or no lock.
    pub async fn release_lock(&self, key: &str, token: &str) -> Result<bool, ClusterError> {
        release(self, &self.inner.keys.lock(key), token).await
    }

    /// Waits until the lock of `key` is gone, at most `max_wait`, polling every 5 ms at first
    /// and every 50 ms at most. Each poll is one request-path call (budget, breaker); the first
    /// failed poll ends the wait with [`WaitOutcome::Unavailable`].
    pub async fn wait_unlocked(&self, key: &str, max_wait: Duration) -> WaitOutcome {
        let redis_key = self.inner.keys.lock(key);
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut pause = POLL_MIN;
        loop {
            let held = self
                .call(Op::LockWait, Budget::Request, |mut conn| {
                    let k = redis_key.clone();
                    async move {
                        redis::cmd("EXISTS")
                            .arg(k)
                            .query_async::<bool>(&mut conn)
                            .await
                    }
                })
                .await;
            match held {
                Ok(false) => return WaitOutcome::Unlocked,
                Ok(true) => {}
                Err(e) => return WaitOutcome::Unavailable(e),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return WaitOutcome::TimedOut;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}
