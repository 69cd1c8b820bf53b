//! The types of a rate-limit decision (pure) and the local deny cache: what the rate-limit call
//! ([`crate::Coordinator::rate_limit`], in `ratelimit`) and the coordinator share.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rate and burst of one bucket (the same meaning as the gateway's local `Quota`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Sustained requests per second (> 0).
    pub per_second: f64,
    /// Requests allowed at once (≥ 1).
    pub burst: u32,
}

impl Quota {
    /// Microseconds between two requests at the sustained rate (at least 1).
    pub(crate) fn interval_us(&self) -> u64 {
        let us = 1e6 / self.per_second.max(1e-9);
        // At most ~31 years: far below 2^53 µs, so Lua's doubles stay exact.
        us.clamp(1.0, 1e15) as u64
    }

    pub(crate) fn burst(&self) -> u32 {
        self.burst.max(1)
    }
}

/// The verdict for one request, with what the `RateLimit-*` headers report (the same fields as
/// the gateway's local `Decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The burst (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests still allowed right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
    /// When refused: how long until one request would pass (`Retry-After`).
    pub retry_after: Duration,
}

impl Decision {
    /// The decision from the script's reply `{allowed, ahead_us, retry_us}`.
    pub(crate) fn from_script(quota: Quota, allowed: bool, ahead_us: u64, retry_us: u64) -> Self {
        let used = ahead_us.div_ceil(quota.interval_us());
        let burst = quota.burst();
        Decision {
            allowed,
            limit: burst,
            remaining: u64::from(burst).saturating_sub(used) as u32,
            reset: Duration::from_micros(ahead_us),
            retry_after: if allowed {
                Duration::ZERO
            } else {
                Duration::from_micros(retry_us)
            },
        }
    }
}

const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Denied {
    retry_at: Instant,
    reset_at: Instant,
    limit: u32,
}

/// Refused buckets, refused again locally until their retry time: a client hammering past its
/// limit costs no Redis call per request. Bounded like the gateway's limiter.
#[derive(Debug)]
pub(crate) struct DenyCache {
    hasher: RandomState,
    max_per_shard: usize,
    shards: Vec<Mutex<HashMap<String, Denied>>>,
}

impl DenyCache {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            max_per_shard: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Denied>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A map of instants: a poisoned lock holds a usable value.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The refusal standing for `key` at `now`, if any.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Decision> {
        let mut map = self.shard(key);
        let d = *map.get(key)?;
        if now >= d.retry_at {
            map.remove(key);
            return None;
        }
        Some(Decision {
            allowed: false,
            limit: d.limit,
            remaining: 0,
            reset: d.reset_at.saturating_duration_since(now),
            retry_after: d.retry_at - now,
        })
    }

    /// Remembers a refusal decided at `now`.
    pub(crate) fn insert(&self, key: &str, d: &Decision, now: Instant) {
        if d.allowed || d.retry_after.is_zero() {
            return;
        }
        let mut map = self.shard(key);
        if map.len() >= self.max_per_shard && !map.contains_key(key) {
            map.retain(|_, v| v.retry_at > now);
            if map.len() >= self.max_per_shard {
                // Full of live refusals: this one is decided by Redis again next time.
                return;
            }
        }
        map.insert(
            key.to_string(),
            Denied {
                retry_at: now + d.retry_after,
                reset_at: now + d.reset,
                limit: d.limit,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}
