//! What the engine tells the outside about its jobs (for metrics), and libvips's memory figures.
//!
//! The engine knows nothing about Prometheus: it calls a [`JobObserver`] at the points where a
//! job changes state. The calls come from guards, so every path (a job refused, skipped because
//! its caller gave up, or panicking inside libvips) reports its end exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Told when a job enters the queue, leaves it, and runs on a worker.
///
/// Each method has an empty default. Calls happen on the submitting task (queue entry) and on
/// the worker thread (the rest): keep them cheap and non-blocking.
pub trait JobObserver: Send + Sync + 'static {
    /// A job was handed to the pool.
    fn queued(&self) {}

    /// A job left the queue after `waited`: a worker picked it up, or the pool refused it at
    /// once (queue full: `waited` is about zero, as imgproxy reports a refused queue wait).
    fn dequeued(&self, waited: Duration) {
        let _ = waited;
    }

    /// A job starts running libvips on a worker.
    fn started(&self) {}

    /// A job that [`started`](JobObserver::started) ended after `ran` (success, error or panic).
    fn finished(&self, ran: Duration) {
        let _ = ran;
    }
}

/// A job's place in the queue: reports [`JobObserver::dequeued`] when dropped.
pub(super) struct QueueTicket {
    observer: Arc<dyn JobObserver>,
    since: Instant,
}

impl QueueTicket {
    /// Reports [`JobObserver::queued`] now.
    pub(super) fn new(observer: Arc<dyn JobObserver>) -> Self {
        observer.queued();
        Self {
            observer,
            since: Instant::now(),
        }
    }

    /// Leaves the queue and, when the job is going to run, returns its running guard.
    pub(super) fn leave(self, runs: bool) -> Option<Running> {
        let observer = Arc::clone(&self.observer);
        drop(self);
        runs.then(|| Running::new(observer))
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.observer.dequeued(self.since.elapsed());
    }
}

/// A job on a worker: reports [`JobObserver::finished`] when dropped (also during a panic's
/// unwinding, which the pool catches).
pub(super) struct Running {
    observer: Arc<dyn JobObserver>,
    since: Instant,
}

impl Running {
    fn new(observer: Arc<dyn JobObserver>) -> Self {
        observer.started();
        Self {
            observer,
            since: Instant::now(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.observer.finished(self.since.elapsed());
    }
}

/// libvips's own memory accounting (pixel buffers it allocated, all threads together), as
/// imgproxy exports it (`vips_memory_bytes`, `vips_max_memory_bytes`, `vips_allocs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VipsMemory {
    /// Bytes held now (`vips_tracked_get_mem`).
    pub bytes: u64,
    /// The most bytes ever held at once since start (`vips_tracked_get_mem_highwater`).
    pub max_bytes: u64,
    /// Live allocations (`vips_tracked_get_allocs`).
    pub allocs: u64,
}

/// Reads libvips's memory figures now. Cheap (three reads under libvips's tracking mutex); safe
/// to call from any thread, before or after the engine starts.
pub fn vips_memory() -> VipsMemory {
    let (bytes, max_bytes, allocs) = super::vips::tracked_memory();
    VipsMemory {
        bytes,
        max_bytes,
        allocs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<&'static str>>);

    impl JobObserver for Log {
        fn queued(&self) {
            self.0.lock().expect("lock").push("queued");
        }
        fn dequeued(&self, _: Duration) {
            self.0.lock().expect("lock").push("dequeued");
        }
        fn started(&self) {
            self.0.lock().expect("lock").push("started");
        }
        fn finished(&self, _: Duration) {
            self.0.lock().expect("lock").push("finished");
        }
    }

    fn events(log: &Log) -> Vec<&'static str> {
        log.0.lock().expect("lock").clone()
    }

    #[test]
    fn guards_report_each_transition_once() {
        let log = Arc::new(Log::default());
        let running = QueueTicket::new(log.clone()).leave(true);
        assert_eq!(events(&log), ["queued", "dequeued", "started"]);
        drop(running);
        assert_eq!(events(&log), ["queued", "dequeued", "started", "finished"]);

        let log = Arc::new(Log::default());
        assert!(QueueTicket::new(log.clone()).leave(false).is_none());
        assert_eq!(
            events(&log),
            ["queued", "dequeued"],
            "a skipped job never starts"
        );

        let log = Arc::new(Log::default());
        drop(QueueTicket::new(log.clone()));
        assert_eq!(
            events(&log),
            ["queued", "dequeued"],
            "a refused job leaves at once"
        );
    }

    #[test]
    fn a_panicking_job_still_finishes() {
        let log = Arc::new(Log::default());
        let ticket = QueueTicket::new(log.clone());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _running = ticket.leave(true);
            panic!("inside libvips");
        }));
        assert!(r.is_err());
        assert_eq!(events(&log), ["queued", "dequeued", "started", "finished"]);
    }
}
