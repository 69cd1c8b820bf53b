//! A cap on simultaneous downstream connections (`server.max_connections`, imgproxy's
//! `IMGPROXY_MAX_CLIENTS`): a permit is taken when a connection is accepted and given back when
//! it closes, whatever way it ends. Pure counting; the edge decides what a refusal looks like.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Open connections against a cap.
#[derive(Debug)]
pub struct ConnectionLimit {
    /// 0 = no cap (connections are still counted).
    max: usize,
    open: AtomicUsize,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    owner: Arc<ConnectionLimit>,
}

impl ConnectionLimit {
    /// At most `max` connections at once; `0` counts without refusing.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// Takes a place, or `None` when `max` connections are already open.
    pub fn try_open(self: &Arc<Self>) -> Option<Permit> {
        // Add first, then check: concurrent callers may push the counter past the cap for an
        // instant, but each one over it backs out, so no more than `max` permits ever exist.
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if self.max > 0 && before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Permit {
            owner: self.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        // An instant overshoot by refused callers is not reported.
        let n = self.open.load(Ordering::Acquire);
        if self.max > 0 { n.min(self.max) } else { n }
    }

    /// The cap (0 = none).
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_release() {
        let l = ConnectionLimit::new(2);
        let a = l.try_open().expect("first");
        let b = l.try_open().expect("second");
        assert!(l.try_open().is_none(), "third is over the cap");
        assert_eq!(l.open(), 2);
        drop(a);
        assert_eq!(l.open(), 1);
        let c = l.try_open().expect("a freed place is reusable");
        drop((b, c));
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn zero_counts_without_refusing() {
        let l = ConnectionLimit::new(0);
        let permits: Vec<_> = (0..1000).map(|_| l.try_open().expect("no cap")).collect();
        assert_eq!(l.open(), 1000);
        drop(permits);
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn concurrent_opens_never_exceed_the_cap() {
        let l = ConnectionLimit::new(4);
        let held = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (l, held, peak) = (l.clone(), held.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Some(p) = l.try_open() {
                            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            held.fetch_sub(1, Ordering::SeqCst);
                            drop(p);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert_eq!(l.open(), 0);
    }
}
