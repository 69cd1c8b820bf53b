//! Counters for metrics: plain atomics, read with [`CacheStats::snapshot`].
//!
//! Counters only grow (Prometheus counters); `bytes` and `entries` are gauges. Relaxed ordering
//! everywhere: the numbers are for dashboards, not for synchronisation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Counters of one tier.
#[derive(Debug, Default)]
pub struct TierStats {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    rejected: AtomicU64,
    evictions: AtomicU64,
    evicted_bytes: AtomicU64,
    purges: AtomicU64,
    corrupt: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

/// A copy of one tier's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierSnapshot {
    /// Lookups answered by this tier.
    pub hits: u64,
    /// Lookups this tier could not answer.
    pub misses: u64,
    /// Entries committed (new or replaced), promotions from disk included.
    pub inserts: u64,
    /// Writes not admitted because the entry was larger than the tier's entry limit.
    pub rejected: u64,
    /// Entries removed to stay within the size bound.
    pub evictions: u64,
    /// Bytes removed to stay within the size bound.
    pub evicted_bytes: u64,
    /// Entries removed by purge or clear.
    pub purges: u64,
    /// Entries found corrupt (checksum, truncation, format) and deleted; disk only.
    pub corrupt: u64,
    /// I/O errors (failed writes, unreadable files); disk only.
    pub errors: u64,
    /// Bytes currently held (gauge). Disk: file lengths rounded up to 4 KiB blocks.
    pub bytes: u64,
    /// Entries currently held (gauge).
    pub entries: u64,
}

impl TierStats {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn insert(&self) {
        self.inserts.fetch_add(1, Relaxed);
    }
    pub(crate) fn reject(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }
    pub(crate) fn evicted(&self, entries: u64, bytes: u64) {
        self.evictions.fetch_add(entries, Relaxed);
        self.evicted_bytes.fetch_add(bytes, Relaxed);
    }
    pub(crate) fn purged(&self, entries: u64) {
        self.purges.fetch_add(entries, Relaxed);
    }
    pub(crate) fn corrupt(&self) {
        self.corrupt.fetch_add(1, Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    /// Set the gauges (called by the tier after each change, with its own totals).
    pub(crate) fn set_usage(&self, entries: u64, bytes: u64) {
        self.entries.store(entries, Relaxed);
        self.bytes.store(bytes, Relaxed);
    }

    /// Read all counters.
    pub fn snapshot(&self) -> TierSnapshot {
        TierSnapshot {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            inserts: self.inserts.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            evicted_bytes: self.evicted_bytes.load(Relaxed),
            purges: self.purges.load(Relaxed),
            corrupt: self.corrupt.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            entries: self.entries.load(Relaxed),
        }
    }
}

/// Counters of the whole cache, one [`TierStats`] per tier.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// The memory tier (all zero when it is disabled).
    pub memory: TierStats,
    /// The disk tier (all zero when it is disabled).
    pub disk: TierStats,
    pub(crate) misses: AtomicU64,
    pub(crate) disk_index_ready: AtomicBool,
    pub(crate) pending_disk_writes: AtomicU64,
}

/// A copy of all counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatsSnapshot {
    pub memory: TierSnapshot,
    pub disk: TierSnapshot,
    /// Lookups no tier could answer (a memory miss that hits disk is not counted here).
    pub misses: u64,
    /// Whether the disk index finished loading (false while the start-up scan runs; lookups work
    /// meanwhile, but the disk bound is enforced only once it is loaded).
    pub disk_index_ready: bool,
    /// Disk commits and meta rewrites in flight, most of them behind a memory commit.
    pub pending_disk_writes: u64,
}

impl CacheStatsSnapshot {
    /// Lookups answered by any tier.
    pub fn hits(&self) -> u64 {
        self.memory.hits + self.disk.hits
    }
}

impl CacheStats {
    /// Read all counters.
    pub fn snapshot(&self) -> CacheStatsSnapshot {
        CacheStatsSnapshot {
            memory: self.memory.snapshot(),
            disk: self.disk.snapshot(),
            misses: self.misses.load(Relaxed),
            disk_index_ready: self.disk_index_ready.load(Relaxed),
            pending_disk_writes: self.pending_disk_writes.load(Relaxed),
        }
    }
}
