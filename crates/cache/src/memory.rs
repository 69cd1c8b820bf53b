//! The memory tier: entries in an LRU list bounded in bytes.
//!
//! One `parking_lot::Mutex` guards the list. It is held only for a hash lookup, an insert or a
//! few pops, never across an `.await`, and evicted bodies are dropped after it is released (so
//! freeing a large buffer never happens inside the critical section). A hit clones an `Arc`;
//! the body is a `Bytes` handed out without copying.
//!
//! Eviction lives here rather than in a pingora `EvictionManager` because a manager has one
//! budget for the whole `Storage` and evicts through `Storage::purge`, which for the tiered
//! storage would also delete the disk copy (see `docs/caching.md`).

use std::sync::Arc;

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;
use pingora::cache::key::HashBinary;
use pingora::{Error, ErrorType, Result};

use super::epoch::Epochs;
use super::stats::CacheStats;
use super::{MetaOp, RawMeta};

/// Bookkeeping bytes charged per entry on top of meta and body (LRU node, key, `Arc`, vectors),
/// so that many tiny entries cannot exceed the bound by their overhead.
pub const ENTRY_OVERHEAD: usize = 128;

/// A committed memory entry. Immutable: updates replace the `Arc`.
pub(crate) struct MemEntry {
    pub meta: RawMeta,
    pub body: Bytes,
}

impl MemEntry {
    fn weight(&self) -> usize {
        weight(&self.meta, self.body.len())
    }
}

fn weight(meta: &RawMeta, body_len: usize) -> usize {
    meta.0.len() + meta.1.len() + body_len + ENTRY_OVERHEAD
}

struct Inner {
    lru: LruCache<HashBinary, Arc<MemEntry>>,
    /// Sum of the weights of the entries in `lru`.
    used: usize,
}

/// The memory tier, bounded to `limit` bytes (meta + body + [`ENTRY_OVERHEAD`] per entry).
pub struct MemoryStorage {
    inner: Mutex<Inner>,
    limit: usize,
    max_entry: usize,
    epochs: Epochs,
    stats: Arc<CacheStats>,
}

/// Why a memory write was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAdmitted {
    /// Larger than the entry limit.
    TooLarge,
    /// A purge of the key (or its stripe) ran while the write was in flight.
    Purged,
}

impl MemoryStorage {
    /// A memory tier holding at most `limit` bytes and admitting entries up to `max_entry` bytes.
    pub(crate) fn new(limit: usize, max_entry: usize, stats: Arc<CacheStats>) -> Self {
        MemoryStorage {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                used: 0,
            }),
            limit,
            max_entry: max_entry.min(limit),
            epochs: Epochs::new(),
            stats,
        }
    }

    /// The largest entry admitted (meta + body + overhead).
    pub fn max_entry_size(&self) -> usize {
        self.max_entry
    }

    /// Whether an entry with this meta and body length would be admitted.
    pub(crate) fn admits(&self, meta: &RawMeta, body_len: usize) -> bool {
        weight(meta, body_len) <= self.max_entry
    }

    /// Look up an entry and mark it most recently used. Counts a hit or a miss.
    pub(crate) fn get(&self, key: &HashBinary) -> Option<Arc<MemEntry>> {
        let found = self.inner.lock().lru.get(key).cloned();
        match found {
            Some(_) => self.stats.memory.hit(),
            None => self.stats.memory.miss(),
        }
        found
    }

    /// The purge epoch of `key`, to be passed to [`Self::insert`] by a write that starts now.
    pub(crate) fn epoch(&self, key: &HashBinary) -> u64 {
        self.epochs.get(key)
    }

    /// Commit an entry, evicting least recently used ones to stay within the bound.
    ///
    /// `epoch` is what [`Self::epoch`] returned when the write (or the disk read being promoted)
    /// started; a purge since then wins and the entry is dropped.
    pub(crate) fn insert(
        &self,
        key: HashBinary,
        entry: MemEntry,
        epoch: u64,
    ) -> std::result::Result<(), NotAdmitted> {
        let w = entry.weight();
        if w > self.max_entry {
            self.stats.memory.reject();
            return Err(NotAdmitted::TooLarge);
        }
        let mut evicted = Vec::new();
        let replaced;
        {
            let mut g = self.inner.lock();
            // Checked under the lock that purge also takes: "purge, then commit" cannot happen.
            if self.epochs.get(&key) != epoch {
                return Err(NotAdmitted::Purged);
            }
            replaced = g.lru.push(key, Arc::new(entry));
            g.used += w;
            if let Some((_, old)) = &replaced {
                g.used -= old.weight();
            }
            // `len() > 1`: the entry just pushed is the most recent and is never popped here.
            while g.used > self.limit && g.lru.len() > 1 {
                let Some((_, victim)) = g.lru.pop_lru() else {
                    break;
                };
                g.used -= victim.weight();
                evicted.push(victim);
            }
            self.stats
                .memory
                .set_usage(g.lru.len() as u64, g.used as u64);
        }
        self.stats.memory.insert();
        if !evicted.is_empty() {
            let bytes: usize = evicted.iter().map(|e| e.weight()).sum();
            self.stats
                .memory
                .evicted(evicted.len() as u64, bytes as u64);
        }
        // `evicted` and `replaced` are dropped here, outside the lock.
        Ok(())
    }

    /// Remove an entry and cancel in-flight writes of its stripe. Returns whether it was present.
    pub(crate) fn remove(&self, key: &HashBinary) -> bool {
        let removed = {
            let mut g = self.inner.lock();
            self.epochs.bump(key);
            let removed = g.lru.pop(key);
            if let Some(e) = &removed {
                g.used -= e.weight();
            }
            self.stats
                .memory
                .set_usage(g.lru.len() as u64, g.used as u64);
            removed
        };
        if removed.is_some() {
            self.stats.memory.purged(1);
        }
        removed.is_some()
    }

    /// Remove every entry and cancel every in-flight write. Returns the number removed.
    pub(crate) fn clear(&self) -> usize {
        let old = {
            let mut g = self.inner.lock();
            self.epochs.bump_all();
            g.used = 0;
            self.stats.memory.set_usage(0, 0);
            std::mem::replace(&mut g.lru, LruCache::unbounded())
        };
        let n = old.len();
        self.stats.memory.purged(n as u64);
        n
    }

    /// Rewrite the meta of an entry, keeping its body. Returns whether the entry was present.
    ///
    /// The new meta is computed outside the lock (deserializing a header costs microseconds) and
    /// swapped in only if the entry was not replaced meanwhile (compare-and-swap on the `Arc`); a
    /// concurrent replacement is newer than what we would write, so it wins.
    pub(crate) fn rewrite_meta(&self, key: &HashBinary, op: &MetaOp) -> Result<bool> {
        let Some(current) = self.inner.lock().lru.peek(key).cloned() else {
            return Ok(false);
        };
        let meta = op.apply(&current.meta)?;
        let entry = Arc::new(MemEntry {
            meta,
            body: current.body.clone(),
        });
        let old = {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            let Some(slot) = inner.lru.peek_mut(key) else {
                return Ok(false);
            };
            if !Arc::ptr_eq(slot, &current) {
                return Ok(true);
            }
            let old_w = slot.weight();
            let new_w = entry.weight();
            let old = std::mem::replace(slot, entry);
            inner.used = inner.used - old_w + new_w;
            self.stats
                .memory
                .set_usage(inner.lru.len() as u64, inner.used as u64);
            old
        };
        drop(old);
        Ok(true)
    }

    /// Start a write of `key` with serialized `meta`.
    pub(crate) fn writer(&self, key: HashBinary, meta: RawMeta) -> MemWriter {
        let too_large = weight(&meta, 0) > self.max_entry;
        MemWriter {
            key,
            epoch: self.epoch(&key),
            meta,
            chunks: Vec::new(),
            body_len: 0,
            max_entry: self.max_entry,
            too_large,
        }
    }
}

/// An in-flight memory write: chunks are kept as `Bytes` (no copy) until commit.
pub(crate) struct MemWriter {
    key: HashBinary,
    epoch: u64,
    meta: RawMeta,
    chunks: Vec<Bytes>,
    body_len: usize,
    max_entry: usize,
    too_large: bool,
}

impl MemWriter {
    /// Append body bytes. Past the entry limit the body is dropped at once, not buffered.
    pub(crate) fn write(&mut self, data: Bytes) {
        if self.too_large {
            return;
        }
        self.body_len += data.len();
        if weight(&self.meta, self.body_len) > self.max_entry {
            self.too_large = true;
            self.chunks = Vec::new();
            return;
        }
        if !data.is_empty() {
            self.chunks.push(data);
        }
    }

    /// Commit into `storage`. Returns the body size.
    pub(crate) fn commit(self, storage: &MemoryStorage) -> std::result::Result<usize, NotAdmitted> {
        if self.too_large {
            storage.stats.memory.reject();
            return Err(NotAdmitted::TooLarge);
        }
        let body = concat(self.chunks, self.body_len);
        storage.insert(
            self.key,
            MemEntry {
                meta: self.meta,
                body,
            },
            self.epoch,
        )?;
        Ok(self.body_len)
    }
}

/// Join chunks into one `Bytes`; a single chunk is reused without copying.
fn concat(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(len);
    for c in &chunks {
        out.extend_from_slice(c);
    }
    Bytes::from(out)
}

/// A hit whose body is in memory (memory tier, or a small disk entry read in one piece).
pub(crate) struct BytesHit {
    body: Bytes,
    start: usize,
    end: usize,
    done: bool,
}

impl BytesHit {
    pub(crate) fn new(body: Bytes) -> Self {
        let end = body.len();
        BytesHit {
            body,
            start: 0,
            end,
            done: false,
        }
    }

    /// The whole body (for weights).
    pub(crate) fn len(&self) -> usize {
        self.body.len()
    }

    /// The selected range, once; then `None`.
    pub(crate) fn read(&mut self) -> Option<Bytes> {
        if self.done || self.start >= self.end {
            self.done = true;
            return None;
        }
        self.done = true;
        Some(self.body.slice(self.start..self.end))
    }

    /// Select `start..end` of the body (as pingora's `MemCache` does: `end` past the body is
    /// clamped, `start` past it is an error) and rewind.
    pub(crate) fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        if start >= self.body.len() {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start out of range {start} >= {}", self.body.len()),
            );
        }
        self.start = start;
        self.end = end.map_or(self.body.len(), |e| e.min(self.body.len()));
        self.done = false;
        Ok(())
    }
}
