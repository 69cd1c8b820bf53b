//! The circuit breaker in front of request-path calls: after `failures` consecutive failed calls
//! Redis is skipped for `open_for`, then a single probe call may try again; its success closes
//! the breaker, its failure opens it for another `open_for`. Pure apart from the instants passed
//! in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::BreakerSettings;

/// The breaker's state, as `/status` and the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go to Redis.
    Closed,
    /// Calls skip Redis (fallback at once) until the cool-down ends.
    Open,
    /// The cool-down ended: one probe call goes to Redis, the others still skip it.
    HalfOpen,
}

impl BreakerState {
    /// A short label (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// A number for a gauge: 0 closed, 1 half open, 2 open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// Whether a call may go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Closed: go ahead.
    Call,
    /// Half open and this call is the probe: go ahead; its outcome decides the state.
    Probe,
    /// Open (or another probe is out): do not call Redis.
    Skip,
}

#[derive(Debug)]
struct Inner {
    consecutive_failures: u32,
    /// `Some` while open: when the cool-down ends.
    open_until: Option<Instant>,
    /// When the probe in flight started (half-open).
    probe_since: Option<Instant>,
    opened_total: u64,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    /// A probe that reported nothing for this long (its caller dropped the future) no longer
    /// blocks the next one.
    probe_grace: Duration,
    inner: Mutex<Inner>,
}

/// What a reported outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings, probe_grace: Duration) -> Self {
        Self {
            settings,
            probe_grace,
            inner: Mutex::new(Inner {
                consecutive_failures: 0,
                open_until: None,
                probe_since: None,
                opened_total: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few integers: a poisoned lock holds a usable value.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a call go to Redis at `now`?
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut s = self.lock();
        match s.open_until {
            None => Admission::Call,
            Some(until) if now < until => Admission::Skip,
            Some(_) => match s.probe_since {
                Some(since) if now.duration_since(since) < self.probe_grace => Admission::Skip,
                _ => {
                    s.probe_since = Some(now);
                    Admission::Probe
                }
            },
        }
    }

    /// A call went through.
    pub(crate) fn success(&self) -> Transition {
        let mut s = self.lock();
        s.consecutive_failures = 0;
        s.probe_since = None;
        if s.open_until.take().is_some() {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    /// A call failed (error or timeout) at `now`.
    pub(crate) fn failure(&self, now: Instant) -> Transition {
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        let was_open = s.open_until.is_some();
        if was_open || s.consecutive_failures >= self.settings.failures {
            // A failed probe (or a late failure of a call made before opening) re-arms the
            // cool-down.
            s.open_until = Some(now + self.settings.open_for);
            s.probe_since = None;
            if !was_open {
                s.opened_total += 1;
                return Transition::Opened;
            }
        }
        Transition::None
    }

    /// The state at `now`.
    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// How often the breaker opened since start.
    pub(crate) fn opened_total(&self) -> u64 {
        self.lock().opened_total
    }

    /// Until when an open breaker skips Redis (`None` when closed).
    pub(crate) fn open_until(&self) -> Option<Instant> {
        self.lock().open_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            BreakerSettings {
                failures: 3,
                open_for: Duration::from_secs(2),
            },
            Duration::from_millis(100),
        )
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        let t = Instant::now();
        assert_eq!(b.failure(t), Transition::None);
        assert_eq!(b.failure(t), Transition::None);
        b.success();
        assert_eq!(b.failure(t), Transition::None);
        assert_eq!(b.failure(t), Transition::None);
        assert_eq!(b.state(t), BreakerState::Closed);
        assert_eq!(b.admit(t), Admission::Call);
        assert_eq!(b.failure(t), Transition::Opened);
        assert_eq!(b.state(t), BreakerState::Open);
        assert_eq!(b.admit(t + Duration::from_secs(1)), Admission::Skip);
        assert_eq!(b.opened_total(), 1);
    }

    #[test]
    fn one_probe_after_the_cool_down() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(2);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.admit(later), Admission::Skip, "one probe at a time");
        // A failed probe opens it again for a whole cool-down.
        assert_eq!(b.failure(later), Transition::None);
        assert_eq!(b.state(later + Duration::from_secs(1)), BreakerState::Open);
        let again = later + Duration::from_secs(2);
        assert_eq!(b.admit(again), Admission::Probe);
        assert_eq!(b.success(), Transition::Closed);
        assert_eq!(b.state(again), BreakerState::Closed);
        assert_eq!(b.admit(again), Admission::Call);
        assert_eq!(b.opened_total(), 1);
    }

    #[test]
    fn an_abandoned_probe_does_not_block_forever() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(2);
        assert_eq!(b.admit(later), Admission::Probe);
        // Its caller went away without reporting; after the grace another probe goes.
        assert_eq!(
            b.admit(later + Duration::from_millis(150)),
            Admission::Probe
        );
    }
}
