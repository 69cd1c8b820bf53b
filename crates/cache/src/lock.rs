//! pingora-cache's cache lock (one request fills a missing key, the others wait for it), with
//! the end of every wait reported to a callback (metrics).
//!
//! pingora tells the lock how each wait ended through `CacheKeyLock::trace_lock_wait`, including
//! the timeouts that the request itself cannot see afterwards (a reader whose writer held the
//! lock past `lock_timeout` competes again and may end up a plain miss). This wrapper forwards
//! everything to pingora's own [`CacheLock`] and only adds the report.

use std::time::Duration;

use pingora::cache::CacheKey;
use pingora::cache::lock::{CacheKeyLock, CacheLock, LockStatus, Locked, ReadLock, WritePermit};
use pingora::cache::trace::Span;

/// Called with how each lock wait ended.
pub type WaitReport = Box<dyn Fn(LockStatus) + Send + Sync>;

/// [`CacheLock`] plus a report of every wait's end.
pub struct ObservedLock {
    inner: CacheLock,
    report: WaitReport,
}

impl ObservedLock {
    /// A lock whose writers may hold a key for `age_timeout` before waiting readers give up on
    /// them and compete again.
    pub fn new(age_timeout: Duration, report: WaitReport) -> Self {
        Self {
            inner: CacheLock::new(age_timeout),
            report,
        }
    }
}

impl CacheKeyLock for ObservedLock {
    fn lock(&self, key: &CacheKey, stale_writer: bool) -> Locked {
        self.inner.lock(key, stale_writer)
    }

    fn release(&self, key: &CacheKey, permit: WritePermit, reason: LockStatus) {
        self.inner.release(key, permit, reason)
    }

    fn trace_lock_wait(&self, span: &mut Span, read_lock: &ReadLock, lock_status: LockStatus) {
        (self.report)(lock_status);
        self.inner.trace_lock_wait(span, read_lock, lock_status)
    }

    fn custom_lock_status(&self, custom_no_cache: &'static str) -> LockStatus {
        self.inner.custom_lock_status(custom_no_cache)
    }
}

/// The metric label of a wait's end.
pub fn outcome_label(status: LockStatus) -> &'static str {
    match status {
        LockStatus::Waiting => "waiting",
        LockStatus::Done => "done",
        LockStatus::TransientError => "transient_error",
        LockStatus::GiveUp => "give_up",
        LockStatus::Dangling => "dangling",
        LockStatus::WaitTimeout => "wait_timeout",
        LockStatus::AgeTimeout => "age_timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn observed(age: Duration) -> (Arc<ObservedLock>, Arc<Mutex<Vec<&'static str>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let lock = ObservedLock::new(
            age,
            Box::new(move |st| s.lock().expect("lock").push(outcome_label(st))),
        );
        (Arc::new(lock), seen)
    }

    fn reader(lock: &ObservedLock, key: &CacheKey) -> ReadLock {
        match lock.lock(key, false) {
            Locked::Read(r) => r,
            Locked::Write(_) => panic!("expected to wait behind the writer"),
        }
    }

    #[tokio::test]
    async fn reports_how_waits_end() {
        let (lock, seen) = observed(Duration::from_secs(5));
        let key = CacheKey::new("k", "");
        let Locked::Write(permit) = lock.lock(&key, false) else {
            panic!("the first request writes");
        };
        let r = reader(&lock, &key);
        lock.release(&key, permit, LockStatus::Done);
        r.wait().await;
        lock.trace_lock_wait(&mut Span::inactive(), &r, r.lock_status());
        assert_eq!(*seen.lock().expect("lock"), ["done"]);
    }

    #[tokio::test]
    async fn a_writer_past_its_age_times_the_readers_out() {
        let (lock, seen) = observed(Duration::from_millis(50));
        let key = CacheKey::new("slow", "");
        let Locked::Write(stuck) = lock.lock(&key, false) else {
            panic!("the first request writes");
        };
        let r = reader(&lock, &key);
        r.wait().await;
        lock.trace_lock_wait(&mut Span::inactive(), &r, r.lock_status());
        assert_eq!(*seen.lock().expect("lock"), ["age_timeout"]);
        // The timed-out lock is replaced: the next request writes.
        let Locked::Write(next) = lock.lock(&key, false) else {
            panic!("a timed-out lock is taken over");
        };
        // (Unreleased permits are a bug pingora asserts on.)
        lock.release(&key, next, LockStatus::Done);
        lock.release(&key, stuck, LockStatus::Done);
    }
}
