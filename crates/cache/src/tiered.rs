//! The `pingora_cache::Storage` imgforge hands to `HttpCache::enable`: memory in front of disk.
//!
//! Either tier may be absent (memory-only, disk-only). Lookups try memory, then disk; a disk hit
//! read in one piece is promoted to memory. Writes go to both tiers as the body streams; at
//! `finish` the memory copy is committed at once and the disk copy (header, `fsync`, rename)
//! completes in a background task, so responses do not wait for `fsync`. When memory does not
//! admit the entry (too large), `finish` waits for the disk commit instead.
//!
//! Disk mutations of one key (commits, meta rewrites) run one after the other in the order they
//! were issued (a per-key chain), whether awaited or in the background: a revalidation right
//! after a fill must rewrite the committed file, not race the commit and lose.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use pingora::Result;
use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::storage::{HandleHit, HandleMiss, MissFinishType};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{
    CacheEntryKey, CacheKey, CacheMeta, HitHandler, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType, Storage,
};
use tokio::sync::watch;
use tracing::Instrument;

use super::MetaOp;
use super::disk::{DiskBody, DiskStorage, DiskWriter, FileHit, internal};
use super::memory::{BytesHit, MemEntry, MemWriter, MemoryStorage, NotAdmitted};
use super::stats::{CacheStats, CacheStatsSnapshot};

/// Memory and/or disk tiers behind one `Storage` (see the module docs and `docs/caching.md`).
///
/// Built once at start-up by [`super::build`], which leaks it: pingora's `Storage` methods take
/// `&'static self`, and the cache lives as long as the process.
pub struct TieredStorage {
    memory: Option<MemoryStorage>,
    disk: Option<DiskStorage>,
    stats: Arc<CacheStats>,
    /// Per key, the completion signal of the last disk mutation issued (see the module docs).
    /// Entries are removed when their chain drains; the lock is never held across `.await`.
    chains: Mutex<HashMap<HashBinary, watch::Receiver<bool>>>,
}

impl TieredStorage {
    pub(crate) fn new(
        memory: Option<MemoryStorage>,
        disk: Option<DiskStorage>,
        stats: Arc<CacheStats>,
    ) -> Self {
        TieredStorage {
            memory,
            disk,
            stats,
            chains: Mutex::new(HashMap::new()),
        }
    }

    /// The counters (for the metrics endpoint).
    pub fn stats(&self) -> CacheStatsSnapshot {
        self.stats.snapshot()
    }

    /// The largest body any tier admits. Pass it to `HttpCache::set_max_file_size_bytes` (or a
    /// smaller value) so that pingora stops filling an entry no tier would keep.
    pub fn max_entry_size(&self) -> usize {
        let mem = self.memory.as_ref().map_or(0, |m| m.max_entry_size());
        let disk = self
            .disk
            .as_ref()
            .map_or(0, |d| d.max_entry_size() as usize);
        mem.max(disk)
    }

    /// The memory tier, if configured.
    pub fn memory(&self) -> Option<&MemoryStorage> {
        self.memory.as_ref()
    }

    /// The disk tier, if configured.
    pub fn disk(&self) -> Option<&DiskStorage> {
        self.disk.as_ref()
    }

    /// Remove the entry of `key` (its exact variance, as stored) from every tier.
    pub async fn purge_key(&self, key: &CacheKey) -> Result<bool> {
        self.purge_hash(&key.combined_bin()).await
    }

    /// Remove several entries (e.g. all known variants of one source). Returns how many existed.
    pub async fn purge_keys(&self, keys: &[CacheKey]) -> Result<usize> {
        let mut n = 0;
        for k in keys {
            n += usize::from(self.purge_key(k).await?);
        }
        Ok(n)
    }

    /// Remove one entry by its combined key hash from every tier.
    ///
    /// Disk first, then memory: a disk hit being promoted concurrently took its memory epoch
    /// before reading the disk, so if it read the old file, the memory purge that follows the
    /// disk delete moves that epoch and the promotion is dropped.
    pub async fn purge_hash(&self, hash: &HashBinary) -> Result<bool> {
        let on_disk = match &self.disk {
            Some(d) => d.remove(*hash).await?,
            None => false,
        };
        let in_memory = self.memory.as_ref().is_some_and(|m| m.remove(hash));
        Ok(on_disk || in_memory)
    }

    /// Remove every entry from every tier (and cancel fills in flight). Returns the number of
    /// entries removed (an entry held by both tiers counts twice).
    pub async fn clear(&self) -> Result<u64> {
        let on_disk = match &self.disk {
            Some(d) => d.clear().await?,
            None => 0,
        };
        let in_memory = self.memory.as_ref().map_or(0, |m| m.clear() as u64);
        Ok(on_disk + in_memory)
    }

    /// Wait until disk mutations in flight (mostly commits behind memory commits) are done (graceful shutdown,
    /// tests). Returns false on timeout.
    pub async fn flush(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.stats.pending_disk_writes.load(Ordering::Acquire) == 0
        })
        .await
    }

    /// Wait until the disk index has loaded (true at once without a disk tier). Serving does not
    /// need this; the disk bound is enforced from then on. Returns false on timeout.
    pub async fn wait_disk_index(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.disk.as_ref().is_none_or(|d| d.index_ready())
        })
        .await
    }

    /// Run a disk mutation of `key` after the ones issued before it, on its own task (so it
    /// completes even if the caller goes away). Await the handle, or drop it to run behind.
    fn serial<T, F>(&'static self, key: HashBinary, op: F) -> tokio::task::JoinHandle<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let (done, rx) = watch::channel(false);
        let prev = self.chains.lock().insert(key, rx.clone());
        let pending = Pending::new(self.stats.clone());
        tokio::spawn(async move {
            // Moved in so that the count drops even if the runtime cancels the task.
            let _pending = pending;
            if let Some(mut prev) = prev {
                // Err: the previous task was cancelled; nothing to wait for.
                let _ = prev.wait_for(|finished| *finished).await;
            }
            let out = op.await;
            let _ = done.send(true);
            let mut chains = self.chains.lock();
            if chains.get(&key).is_some_and(|last| last.same_channel(&rx)) {
                chains.remove(&key);
            }
            out
        })
    }
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// One disk mutation in flight, counted while alive.
struct Pending(Arc<CacheStats>);

impl Pending {
    fn new(stats: Arc<CacheStats>) -> Self {
        stats.pending_disk_writes.fetch_add(1, Ordering::AcqRel);
        Pending(stats)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending_disk_writes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Identified entries are not ours: entry IDs are never assigned, so such a target cannot match.
fn foreign_target(target: &PurgeTarget<'_>) -> bool {
    matches!(target, PurgeTarget::Exact(CacheEntryKey::Identified { .. }))
}

impl TieredStorage {
    /// Memory, then disk; records the tier that answered on the current (`cache_lookup`) span.
    async fn find(&'static self, key: &CacheKey) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = key.combined_bin();
        if let Some(mem) = &self.memory
            && let Some(entry) = mem.get(&hash)
        {
            tracing::Span::current().record("cache.tier", "memory");
            let meta = CacheMeta::deserialize(&entry.meta.0, &entry.meta.1)?;
            let hit = Hit::Bytes(BytesHit::new(entry.body.clone()));
            return Ok(Some((meta, Box::new(hit))));
        }
        let Some(disk) = &self.disk else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        // Taken before the disk read: see `purge_hash`.
        let mem_epoch = self.memory.as_ref().map(|m| m.epoch(&hash));
        let Some(found) = disk.read(hash).await else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        let meta = match CacheMeta::deserialize(&found.meta.0, &found.meta.1) {
            Ok(meta) => meta,
            Err(e) => {
                disk.drop_unusable(hash, found.id, e.to_string()).await;
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        };
        let hit = match found.body {
            DiskBody::Whole(body) => {
                if let (Some(mem), Some(epoch)) = (&self.memory, mem_epoch)
                    && mem.admits(&found.meta, body.len())
                {
                    let entry = MemEntry {
                        meta: found.meta,
                        body: body.clone(),
                    };
                    // A purge since the epoch was taken wins; nothing else can fail here.
                    let _ = mem.insert(hash, entry, epoch);
                }
                Hit::Bytes(BytesHit::new(body))
            }
            DiskBody::File(file) => Hit::File(file),
        };
        tracing::Span::current().record("cache.tier", "disk");
        Ok(Some((meta, Box::new(hit))))
    }
}

#[async_trait]
impl Storage for TieredStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let span = crate::spans::cache_lookup();
        let found = self.find(key).instrument(span.clone()).await;
        span.record("cache.hit", matches!(found, Ok(Some(_))));
        found
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let hash = key.combined_bin();
        let raw = meta.serialize()?;
        let mem = self.memory.as_ref().map(|m| m.writer(hash, raw.clone()));
        let disk = match &self.disk {
            Some(d) => Some(d.writer(hash, raw).await),
            None => None,
        };
        Ok(Box::new(TieredMiss {
            storage: self,
            key: hash,
            mem,
            disk,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        if foreign_target(&target) {
            return Ok(PurgeOutcome::NotFound);
        }
        if self.purge_hash(&target.key().combined_bin()).await? {
            // No entry IDs: active purges select key-only entries.
            Ok(PurgeOutcome::Purged(None))
        } else {
            Ok(PurgeOutcome::NotFound)
        }
    }

    async fn expire(
        &'static self,
        target: PurgeTarget<'_>,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        if foreign_target(&target) {
            return Ok(PurgeOutcome::NotFound);
        }
        let hash = target.key().combined_bin();
        let op = MetaOp::Expire(SystemTime::now());
        let in_memory = match &self.memory {
            Some(m) => m.rewrite_meta(&hash, &op)?,
            None => false,
        };
        let on_disk = match &self.disk {
            Some(d) => self
                .serial(hash, d.rewrite_meta(hash, op))
                .await
                .map_err(|e| internal("disk cache expire task", e))??,
            None => false,
        };
        if in_memory || on_disk {
            Ok(PurgeOutcome::Expired)
        } else {
            Ok(PurgeOutcome::NotFound)
        }
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = key.combined_bin();
        let op = MetaOp::Replace(meta.serialize()?);
        let in_memory = match &self.memory {
            Some(m) => m.rewrite_meta(&hash, &op)?,
            None => false,
        };
        match &self.disk {
            // Memory already serves the new meta: the disk rewrite need not delay the response.
            Some(d) if in_memory => {
                drop(self.serial(hash, async move {
                    if let Err(e) = d.rewrite_meta(hash, op).await {
                        tracing::warn!(error = %e, "disk cache meta update failed");
                    }
                }));
                Ok(true)
            }
            Some(d) => self
                .serial(hash, d.rewrite_meta(hash, op))
                .await
                .map_err(|e| internal("disk cache meta update task", e))?,
            None => Ok(in_memory),
        }
    }

    fn support_streaming_partial_write(&self) -> bool {
        // Readers wait for the cache lock instead of tailing a fill in progress.
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A cache hit: a body in memory, or a large disk entry streamed from its file.
enum Hit {
    Bytes(BytesHit),
    File(FileHit),
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        match self {
            Hit::Bytes(b) => Ok(b.read()),
            Hit::File(f) => f.read().await,
        }
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        match self {
            Hit::Bytes(b) => b.seek(start, end),
            Hit::File(f) => f.seek(start, end),
        }
    }

    fn get_eviction_weight(&self) -> usize {
        match self {
            Hit::Bytes(b) => b.len(),
            Hit::File(f) => f.len() as usize,
        }
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A fill in progress: the body goes to each configured tier as it streams.
///
/// Dropped without `finish`: the memory buffer is freed and the disk temporary file deleted, so
/// nothing becomes visible.
struct TieredMiss {
    storage: &'static TieredStorage,
    key: HashBinary,
    mem: Option<MemWriter>,
    disk: Option<DiskWriter>,
}

#[async_trait]
impl HandleMiss for TieredMiss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        // Never an error: a failing cache write must not fail the response being proxied. Tier
        // failures are reported by `finish`.
        if let Some(m) = &mut self.mem {
            m.write(data.clone());
        }
        if let Some(d) = &mut self.disk {
            d.write(data).await;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let TieredMiss {
            storage,
            key,
            mem,
            disk,
        } = *self;
        let in_memory = match (mem, &storage.memory) {
            (Some(w), Some(m)) => Some(w.commit(m)),
            _ => None,
        };
        match (in_memory, disk) {
            (Some(Ok(size)), Some(d)) => {
                drop(storage.serial(key, async move {
                    // Failures are logged and counted by the writer; purges win silently.
                    let _ = d.commit().await;
                }));
                Ok(MissFinishType::Created(size))
            }
            (_, Some(d)) => storage
                .serial(key, d.commit())
                .await
                .map_err(|e| internal("disk cache commit task", e))?
                .map(|n| MissFinishType::Created(n as usize))
                .map_err(|e| internal("disk cache", e)),
            (Some(Ok(size)), None) => Ok(MissFinishType::Created(size)),
            (Some(Err(NotAdmitted::TooLarge)), None) => Err(internal(
                "memory cache",
                "entry larger than the memory tier's entry limit",
            )),
            (Some(Err(NotAdmitted::Purged)), None) => {
                Err(internal("memory cache", "purged while being written"))
            }
            (None, None) => Err(internal("cache", "no tier configured")),
        }
    }
}
