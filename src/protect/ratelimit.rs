//! Rate limiting with GCRA (the generic cell rate algorithm: a token bucket kept as one
//! timestamp per key). Pure apart from the clock passed in; memory stays bounded however many
//! clients there are.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::Duration;

// The same bucket parameters and verdict as the fleet's shared limiter: a decision reads the
// same whichever decided it (`fleet::Fleet::rate_limit`).
pub use imgforge_cluster::{Decision, Quota};

const SHARDS: usize = 16;

/// Nanoseconds on a monotonic clock (since the first call), for [`Limiter::check`].
pub fn now_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// A keyed GCRA limiter. Keys are typically client IPs (or `()` for a global cap).
pub struct Limiter<K> {
    quota: Quota,
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run (burst − 1 intervals).
    tolerance: u64,
    max_keys_per_shard: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<K, u64>>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter remembering at most about `max_keys` keys.
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        let interval = (1e9 / quota.per_second.max(1e-9)).min(u64::MAX as f64 / 4.0) as u64;
        let burst = u64::from(quota.burst.max(1));
        Self {
            quota,
            interval,
            tolerance: interval.saturating_mul(burst - 1),
            max_keys_per_shard: (max_keys / SHARDS).max(16),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Decides one request of `key` at `now` (nanoseconds on a monotonic clock).
    /// The limiter's rate and burst.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    pub fn check(&self, key: &K, now: u64) -> Decision {
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let Ok(mut map) = shard.lock() else {
            // A poisoned shard only means another thread panicked mid-update: fail open.
            return self.decision(true, now, now);
        };
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        if tat - now > self.tolerance {
            return self.decision(false, tat, now);
        }
        let new_tat = tat + self.interval;
        if map.len() >= self.max_keys_per_shard && !map.contains_key(key) {
            // Keys whose bucket is full again carry no state: dropping them changes nothing.
            map.retain(|_, t| *t > now);
            if map.len() >= self.max_keys_per_shard {
                // Still full (a flood of distinct keys): forget the one closest to full.
                if let Some(k) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                    map.remove(&k);
                }
            }
        }
        map.insert(key.clone(), new_tat);
        self.decision(true, new_tat, now)
    }

    fn decision(&self, allowed: bool, tat: u64, now: u64) -> Decision {
        let ahead = tat.saturating_sub(now);
        let used = ahead.div_ceil(self.interval.max(1));
        let remaining = u64::from(self.quota.burst).saturating_sub(used) as u32;
        let retry_after = if allowed {
            Duration::ZERO
        } else {
            Duration::from_nanos(ahead - self.tolerance)
        };
        Decision {
            allowed,
            limit: self.quota.burst,
            remaining,
            reset: Duration::from_nanos(ahead),
            retry_after,
        }
    }

    /// Keys currently remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_sustained_rate() {
        let l = Limiter::new(
            Quota {
                per_second: 10.0,
                burst: 3,
            },
            1000,
        );
        let t0 = 100 * S;
        let verdicts: Vec<bool> = (0..5).map(|_| l.check(&"a", t0).allowed).collect();
        assert_eq!(verdicts, [true, true, true, false, false]);
        let d = l.check(&"a", t0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        // One interval later exactly one more passes.
        assert!(l.check(&"a", t0 + S / 10).allowed);
        assert!(!l.check(&"a", t0 + S / 10).allowed);
        // Other keys are independent.
        assert!(l.check(&"b", t0).allowed);
        // After a quiet second the full burst is back.
        let later = t0 + 2 * S;
        assert_eq!(l.check(&"a", later).remaining, 2);
    }

    #[test]
    fn memory_is_bounded() {
        let l = Limiter::new(
            Quota {
                per_second: 1.0,
                burst: 5,
            },
            1000,
        );
        for i in 0..100_000u32 {
            l.check(&i, 10 * S);
        }
        assert!(l.len() <= 1000, "{}", l.len());
    }

    #[test]
    fn remaining_counts_down() {
        let l = Limiter::new(
            Quota {
                per_second: 1.0,
                burst: 3,
            },
            100,
        );
        let r: Vec<u32> = (0..3).map(|_| l.check(&1, 5 * S).remaining).collect();
        assert_eq!(r, [2, 1, 0]);
    }
}
