//! Shared rate limits: [`crate::Coordinator::rate_limit`] and its verdict. The types of a
//! decision and the local deny cache are in `bucket`.
//!
//! The algorithm is the gateway's local one (GCRA: one theoretical arrival time per bucket),
//! run by one Lua script per decision on Redis's clock, so that no node's clock matters and
//! concurrent nodes cannot interleave a read and a write.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::script::Lua;

pub use crate::bucket::{Decision, Quota};
use crate::coordinator::{Budget, Coordinator};
use crate::observe::{FallbackReason, Op};
use crate::settings::OnError;

/// The outcome of [`crate::Coordinator::rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Decided by the fleet (Redis), or by the local deny cache standing in for it.
    Shared(Decision),
    /// Redis could not decide: the caller applies the `on_error` policy, most simply with
    /// [`Verdict::resolve`].
    Fallback(Fallback),
}

/// Why and how to fall back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The configured `on_error` policy.
    pub policy: OnError,
    /// What went wrong.
    pub reason: FallbackReason,
    /// The bucket's burst (for the headers of an `allow`/`deny` answer).
    pub limit: u32,
}

/// `Retry-After` of a request refused by `on_error = "deny"`.
pub const DENY_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Verdict {
    /// The decision to answer with: the shared one, or the `on_error` policy's — `local` asks
    /// `local` (the node's own in-memory limiter, called only in that case), `allow` admits,
    /// `deny` refuses for [`DENY_RETRY_AFTER`].
    pub fn resolve(self, local: impl FnOnce() -> Decision) -> Decision {
        match self {
            Verdict::Shared(d) => d,
            Verdict::Fallback(f) => match f.policy {
                OnError::Local => local(),
                OnError::Allow => Decision {
                    allowed: true,
                    limit: f.limit,
                    remaining: f.limit,
                    reset: Duration::ZERO,
                    retry_after: Duration::ZERO,
                },
                OnError::Deny => Decision {
                    allowed: false,
                    limit: f.limit,
                    remaining: 0,
                    reset: DENY_RETRY_AFTER,
                    retry_after: DENY_RETRY_AFTER,
                },
            },
        }
    }

    /// Whether Redis could not decide.
    pub fn is_fallback(&self) -> bool {
        matches!(self, Verdict::Fallback(_))
    }
}

static GCRA: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("scripts/gcra.lua")));

impl Coordinator {
    /// Decides one request of `client` (e.g. its IP) against the bucket `scope` (e.g. the route,
    /// or `*` for a global cap) shared by the whole fleet.
    ///
    /// A client refused less than its `retry_after` ago is refused again from the local deny
    /// cache, without a Redis call. Otherwise one script call, within `timeout`, behind the
    /// circuit breaker; when it fails, times out or is skipped the verdict is
    /// [`Verdict::Fallback`] (never an error) and the caller applies `on_error`, typically
    /// `verdict.resolve(|| local_limiter.check(..))`.
    pub async fn rate_limit(&self, scope: &str, client: &str, quota: Quota) -> Verdict {
        let inner = &self.inner;
        let key = inner.keys.rate(scope, client);
        if let Some(d) = inner.deny.get(&key, Instant::now()) {
            inner.counters.deny_cache_hit();
            inner.observer.deny_cache_hit();
            return Verdict::Shared(d);
        }
        let interval = quota.interval_us();
        let burst = quota.burst();
        let reply = self
            .call(Op::RateLimit, Budget::Request, |mut conn| {
                let key = key.clone();
                async move {
                    GCRA.run::<(i64, i64, i64), _>(&mut conn, 1, |c| {
                        c.arg(&key).arg(interval).arg(burst);
                    })
                    .await
                }
            })
            .await;
        match reply {
            Ok((allowed, ahead, retry)) => {
                let d = Decision::from_script(
                    quota,
                    allowed == 1,
                    u64::try_from(ahead).unwrap_or(0),
                    u64::try_from(retry).unwrap_or(0),
                );
                if !d.allowed {
                    inner.deny.insert(&key, &d, Instant::now());
                }
                Verdict::Shared(d)
            }
            Err(e) => {
                let reason = FallbackReason::of(e.kind());
                inner.counters.fallback(reason);
                inner.observer.fallback(reason);
                tracing::debug!(error = %e, scope, "shared rate limit fell back");
                Verdict::Fallback(Fallback {
                    policy: inner.settings.on_error,
                    reason,
                    limit: burst,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::DenyCache;
    use std::time::Instant;

    const Q: Quota = Quota {
        per_second: 10.0,
        burst: 3,
    };

    #[test]
    fn decision_fields_match_the_local_limiter() {
        // First request of a fresh bucket: TAT = now + interval.
        let d = Decision::from_script(Q, true, 100_000, 0);
        assert_eq!((d.limit, d.remaining), (3, 2));
        assert_eq!(d.reset, Duration::from_millis(100));
        // Third: TAT = now + 3 intervals, nothing left.
        let d = Decision::from_script(Q, true, 300_000, 0);
        assert_eq!(d.remaining, 0);
        // Refused: 300 ms ahead, tolerance 200 ms → retry in 100 ms.
        let d = Decision::from_script(Q, false, 300_000, 100_000);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn resolve_applies_the_policy() {
        let fb = |policy| {
            Verdict::Fallback(Fallback {
                policy,
                reason: FallbackReason::Timeout,
                limit: 7,
            })
        };
        let local = Decision {
            allowed: false,
            limit: 7,
            remaining: 0,
            reset: Duration::from_secs(3),
            retry_after: Duration::from_secs(2),
        };
        assert_eq!(fb(OnError::Local).resolve(|| local), local);
        let allow = fb(OnError::Allow).resolve(|| panic!("local not asked"));
        assert!(allow.allowed);
        assert_eq!(allow.remaining, 7);
        let deny = fb(OnError::Deny).resolve(|| panic!("local not asked"));
        assert!(!deny.allowed);
        assert_eq!(deny.retry_after, DENY_RETRY_AFTER);
        let shared = Decision {
            allowed: true,
            ..local
        };
        assert_eq!(
            Verdict::Shared(shared).resolve(|| panic!("local not asked")),
            shared
        );
    }

    #[test]
    fn deny_cache_holds_until_the_retry_time() {
        let c = DenyCache::new(1000);
        let t = Instant::now();
        let refused = Decision::from_script(Q, false, 300_000, 100_000);
        c.insert("k", &refused, t);
        let again = c.get("k", t + Duration::from_millis(40)).expect("cached");
        assert!(!again.allowed);
        assert_eq!(again.retry_after, Duration::from_millis(60));
        assert_eq!(again.reset, Duration::from_millis(260));
        assert!(c.get("other", t).is_none());
        assert!(c.get("k", t + Duration::from_millis(100)).is_none());
        assert_eq!(c.len(), 0, "an expired refusal is dropped");
        // Admissions are never cached.
        c.insert("a", &Decision::from_script(Q, true, 100_000, 0), t);
        assert!(c.get("a", t).is_none());
    }

    #[test]
    fn deny_cache_is_bounded() {
        let c = DenyCache::new(64);
        let t = Instant::now();
        let refused = Decision::from_script(Q, false, 300_000, 100_000);
        for i in 0..10_000 {
            c.insert(&i.to_string(), &refused, t);
        }
        assert!(c.len() <= 64, "{}", c.len());
    }

    #[test]
    fn extreme_quotas_stay_in_range() {
        let slow = Quota {
            per_second: 1e-12,
            burst: 0,
        };
        assert_eq!(slow.interval_us(), 1_000_000_000_000_000);
        assert_eq!(slow.burst(), 1);
        let fast = Quota {
            per_second: 1e9,
            burst: 5,
        };
        assert_eq!(fast.interval_us(), 1);
    }
}
