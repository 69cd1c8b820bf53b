//! The disk index: key hash → disk usage, in least-recently-used order (no I/O here).
//!
//! Recency is exact while the process runs (an LRU list, promoted on every hit) and approximate
//! across restarts: the start-up scan orders files by modification time, which the read path
//! refreshes at most once per [`super::TOUCH_INTERVAL`] per entry.
//!
//! Loading: the index starts empty and "loading". Writes, hits and removals during the scan act
//! on it normally; removals are also remembered so that a file the scan saw before it was
//! purged or evicted is not re-added. [`Index::merge_loaded`] adds the scanned entries behind
//! everything already present (they are older), and [`Index::finish_loading`] enforces the bound,
//! which until then only covers entries written since start.

use std::collections::HashSet;

use lru::LruCache;
use parking_lot::Mutex;
use pingora::cache::key::HashBinary;

/// Accounting unit: file systems allocate whole blocks, so a 1-byte file costs 4 KiB.
const BLOCK: u64 = 4096;

/// Disk usage charged for a file of `len` bytes (rounded up to whole 4 KiB blocks).
pub(crate) fn usage(len: u64) -> u64 {
    len.div_ceil(BLOCK).max(1) * BLOCK
}

struct Inner {
    lru: LruCache<HashBinary, u64>,
    total: u64,
    /// `Some` while the start-up scan runs: keys removed meanwhile.
    removed_while_loading: Option<HashSet<HashBinary>>,
}

/// The index of one disk tier.
pub(crate) struct Index {
    inner: Mutex<Inner>,
    limit: u64,
}

impl Index {
    /// An empty, loading index bounded to `limit` bytes of usage.
    pub(crate) fn new(limit: u64) -> Self {
        Index {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                total: 0,
                removed_while_loading: Some(HashSet::new()),
            }),
            limit,
        }
    }

    /// Whether the start-up scan has been merged.
    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.inner.lock().removed_while_loading.is_none()
    }

    /// Record a committed entry as most recently used. Returns the entries to evict (already
    /// removed from the index; the caller deletes their files).
    pub(crate) fn insert(&self, key: HashBinary, usage: u64) -> Vec<(HashBinary, u64)> {
        let mut g = self.inner.lock();
        if let Some((_, old)) = g.lru.push(key, usage) {
            g.total -= old;
        }
        g.total += usage;
        evict_over_limit(&mut g, self.limit)
    }

    /// Mark an entry as just used (no-op if unknown, e.g. not scanned yet).
    pub(crate) fn touch(&self, key: &HashBinary) {
        self.inner.lock().lru.promote(key);
    }

    /// Whether the index tracks `key` (without changing its recency).
    pub(crate) fn contains(&self, key: &HashBinary) -> bool {
        self.inner.lock().lru.contains(key)
    }

    /// Forget an entry (purged, corrupt, or its file vanished). Returns its usage if it was known.
    pub(crate) fn remove(&self, key: &HashBinary) -> Option<u64> {
        let mut g = self.inner.lock();
        if let Some(set) = g.removed_while_loading.as_mut() {
            set.insert(*key);
        }
        let usage = g.lru.pop(key);
        if let Some(u) = usage {
            g.total -= u;
        }
        usage
    }

    /// Add scanned entries, given newest first, behind everything already indexed. Entries
    /// already present (written or hit since start) or removed since start are skipped.
    pub(crate) fn merge_loaded(&self, newest_first: &[(HashBinary, u64)]) {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let Some(removed) = inner.removed_while_loading.as_ref() else {
            return;
        };
        for (key, usage) in newest_first {
            if removed.contains(key) || inner.lru.contains(key) {
                continue;
            }
            inner.lru.push(*key, *usage);
            // Newest first, each demoted to the tail: the oldest ends up least recently used.
            inner.lru.demote(key);
            inner.total += usage;
        }
    }

    /// End loading and return what must be evicted now that the whole content is known.
    pub(crate) fn finish_loading(&self) -> Vec<(HashBinary, u64)> {
        let mut g = self.inner.lock();
        g.removed_while_loading = None;
        evict_over_limit(&mut g, self.limit)
    }

    /// (entries, bytes of usage) currently indexed.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let g = self.inner.lock();
        (g.lru.len() as u64, g.total)
    }
}

fn evict_over_limit(g: &mut Inner, limit: u64) -> Vec<(HashBinary, u64)> {
    let mut out = Vec::new();
    // `len() > 1`: never evict the only (just inserted) entry; entries larger than the bound
    // are refused before they are written.
    while g.total > limit && g.lru.len() > 1 {
        let Some((key, usage)) = g.lru.pop_lru() else {
            break;
        };
        g.total -= usage;
        if let Some(set) = g.removed_while_loading.as_mut() {
            set.insert(key);
        }
        out.push((key, usage));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u8) -> HashBinary {
        [n; 16]
    }

    #[test]
    fn usage_rounds_up_to_blocks() {
        assert_eq!(usage(0), 4096);
        assert_eq!(usage(1), 4096);
        assert_eq!(usage(4096), 4096);
        assert_eq!(usage(4097), 8192);
    }

    #[test]
    fn evicts_least_recently_used_to_stay_within_limit() {
        let idx = Index::new(3 * 4096);
        let _ = idx.finish_loading();
        assert!(idx.insert(k(1), 4096).is_empty());
        assert!(idx.insert(k(2), 4096).is_empty());
        assert!(idx.insert(k(3), 4096).is_empty());
        idx.touch(&k(1));
        let evicted = idx.insert(k(4), 4096);
        assert_eq!(evicted, vec![(k(2), 4096)]);
        assert_eq!(idx.totals(), (3, 3 * 4096));
        assert!(idx.contains(&k(1)));
    }

    #[test]
    fn replacing_an_entry_adjusts_the_total() {
        let idx = Index::new(100 * 4096);
        idx.insert(k(1), 4096);
        idx.insert(k(1), 3 * 4096);
        assert_eq!(idx.totals(), (1, 3 * 4096));
        assert_eq!(idx.remove(&k(1)), Some(3 * 4096));
        assert_eq!(idx.totals(), (0, 0));
    }

    #[test]
    fn loaded_entries_go_behind_live_ones_and_removed_ones_stay_out() {
        let idx = Index::new(3 * 4096);
        assert!(!idx.is_ready());
        idx.insert(k(10), 4096); // written during the scan
        idx.insert(k(11), 4096);
        idx.remove(&k(11)); // purged during the scan, the scan saw its file
        idx.merge_loaded(&[(k(1), 4096), (k(2), 4096), (k(11), 4096), (k(10), 4096)]);
        assert_eq!(idx.totals(), (3, 3 * 4096));
        idx.merge_loaded(&[(k(3), 4096)]); // older batch
        let evicted = idx.finish_loading();
        assert!(idx.is_ready());
        // The oldest scanned entry goes first; the live one survives.
        assert_eq!(evicted, vec![(k(3), 4096)]);
        let evicted = idx.insert(k(12), 4096);
        assert_eq!(evicted, vec![(k(2), 4096)]);
        assert!(idx.contains(&k(10)) && idx.contains(&k(1)) && idx.contains(&k(12)));
    }
}
