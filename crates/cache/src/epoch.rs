//! Purge epochs: make a purge win over a fill that was already in flight.
//!
//! A miss handler created before a purge would otherwise commit the purged (old) response right
//! after the purge. Each write remembers the epoch of its key's stripe when it starts; a purge
//! bumps that stripe; a commit whose stripe moved is discarded. Stripes (256, by the first hash
//! byte) keep this to a fixed array: a purge also cancels in-flight fills of unrelated keys in the
//! same stripe, which only costs those a refill. Callers bump and check under the same lock that
//! guards the commit, which is what makes "purge, then commit" impossible.

use std::sync::atomic::{AtomicU64, Ordering};

use pingora::cache::key::HashBinary;

const STRIPES: usize = 256;

/// One epoch per stripe of keys.
pub(crate) struct Epochs {
    stripes: Box<[AtomicU64]>,
}

impl Epochs {
    pub(crate) fn new() -> Self {
        Epochs {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The current epoch of `key`'s stripe, recorded when a write starts.
    pub(crate) fn get(&self, key: &HashBinary) -> u64 {
        self.stripes[key[0] as usize].load(Ordering::Acquire)
    }

    /// Invalidate in-flight writes of `key`'s stripe.
    pub(crate) fn bump(&self, key: &HashBinary) {
        self.stripes[key[0] as usize].fetch_add(1, Ordering::AcqRel);
    }

    /// Invalidate every in-flight write (for `clear`).
    pub(crate) fn bump_all(&self) {
        for s in self.stripes.iter() {
            s.fetch_add(1, Ordering::AcqRel);
        }
    }
}
