//! Cache storage: a bounded memory tier in front of a persistent disk tier, as one
//! `pingora_cache::Storage` (pingora 0.9.1 ships none for production: its `MemCache` is a test
//! helper and unbounded).
//!
//! # Use (once, at start-up)
//!
//! ```no_run
//! # fn main() -> Result<(), imgforge_cache::CacheError> {
//! use imgforge_cache::{self as cache, StorageSettings};
//! let cache = cache::build(&StorageSettings {
//!     memory_size: 256 << 20,
//!     disk_path: Some("/var/cache/imgforge".into()),
//!     disk_size: 10 << 30,
//!     ..StorageSettings::default()
//! })?;
//! // or, from the loaded configuration: cache::build(&(&config.cache).into())?
//! // Per request, in `request_cache_filter`:
//! // session.cache.enable(cache, None /* no eviction manager */, predictor, lock, None);
//! // session.cache.set_max_file_size_bytes(cache.max_entry_size());
//! # Ok(()) }
//! ```
//!
//! - `build` leaks the storage (`&'static`): pingora's `Storage` methods take `&'static self`;
//!   the cache is a process-lifetime singleton, built once, never dropped.
//! - Pass **`None` as the eviction manager**. Each tier enforces its own byte bound (LRU) inside
//!   the storage. A pingora `EvictionManager` has a single budget for the whole storage and
//!   evicts by calling `Storage::purge`, which here would delete both tiers' copies; it would
//!   also need its own persistence to survive restarts, which the disk index already has.
//! - `build` needs no async runtime (the disk index loads on its own thread); it fails with
//!   [`CacheError::NotWritable`] when the directory cannot be created or written.
//! - Purge: [`TieredStorage::purge_key`] / [`TieredStorage::purge_keys`] (every tier), or
//!   `HttpCache::purge` which reaches the same code through `Storage::purge`;
//!   [`TieredStorage::clear`] for everything. There is no purge by URL prefix: keys are stored
//!   as hashes only.
//! - Metrics: [`TieredStorage::stats`].
//!
//! Layout: [`memory`] (memory tier), [`disk`] (disk tier: format in [`disk::entry`]), `tiered`
//! (the `Storage` implementation), [`stats`] (counters), [`lock`] (pingora's cache lock, with
//! each wait's end reported for metrics). Details in `docs/caching.md`.

pub mod disk;
mod epoch;
pub mod generations;
pub mod lock;
pub mod memory;
pub mod policy;
pub mod spans;
pub mod stats;
#[cfg(test)]
mod tests;
mod tiered;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use pingora::cache::CacheMeta;

pub use disk::DiskStorage;
pub use memory::MemoryStorage;
pub use stats::{CacheStats, CacheStatsSnapshot, TierSnapshot, TierStats};
pub use tiered::TieredStorage;

/// The default [`StorageSettings::max_entry_fraction`]: an entry may take an eighth of a tier.
pub const DEFAULT_MAX_ENTRY_FRACTION: f64 = 0.125;

/// What [`build`] needs.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// Bound of the memory tier in bytes (meta + body + a fixed per-entry overhead). 0 disables
    /// the memory tier. (`u64` like the configuration; saturates to `usize` on 32-bit targets.)
    pub memory_size: u64,
    /// Directory of the disk tier (created if missing). `None` disables the disk tier.
    pub disk_path: Option<PathBuf>,
    /// Bound of the disk tier in bytes (file lengths rounded up to 4 KiB blocks; temporary files
    /// of fills in progress are not counted).
    pub disk_size: u64,
    /// Entries larger than this fraction of a tier's bound are not admitted to that tier
    /// (`0 < f <= 1`).
    pub max_entry_fraction: f64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            memory_size: 256 << 20,
            disk_path: None,
            disk_size: 0,
            max_entry_fraction: DEFAULT_MAX_ENTRY_FRACTION,
        }
    }
}

impl From<&imgforge_config::CacheSettings> for StorageSettings {
    /// The `[cache]` section as loaded by `config` (entry fraction: the default).
    fn from(c: &imgforge_config::CacheSettings) -> Self {
        StorageSettings {
            memory_size: c.memory_size,
            disk_path: c.disk_path.clone(),
            disk_size: c.disk_size,
            max_entry_fraction: DEFAULT_MAX_ENTRY_FRACTION,
        }
    }
}

/// Why the cache could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid cache settings: {0}")]
    Invalid(String),
    #[error("cache directory {} is not writable: {source}", path.display())]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cache: {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Build the cache storage once at start-up and leak it (see the module docs for what to pass
/// to `HttpCache::enable`).
pub fn build(settings: &StorageSettings) -> Result<&'static TieredStorage, CacheError> {
    let storage = open(settings)?;
    Ok(Box::leak(Box::new(storage)))
}

/// Build without leaking (tests and benches that build many).
fn open(settings: &StorageSettings) -> Result<TieredStorage, CacheError> {
    let f = settings.max_entry_fraction;
    if !(f > 0.0 && f <= 1.0) {
        return Err(CacheError::Invalid(format!(
            "max_entry_fraction must be in (0, 1], got {f}"
        )));
    }
    if settings.memory_size == 0 && settings.disk_path.is_none() {
        return Err(CacheError::Invalid(
            "neither a memory nor a disk tier is configured".into(),
        ));
    }
    let stats = Arc::new(CacheStats::default());
    let memory = (settings.memory_size > 0).then(|| {
        let size = usize::try_from(settings.memory_size).unwrap_or(usize::MAX);
        let max_entry = (size as f64 * f) as usize;
        MemoryStorage::new(size, max_entry, stats.clone())
    });
    let disk = match &settings.disk_path {
        Some(path) => {
            if settings.disk_size == 0 {
                return Err(CacheError::Invalid(
                    "disk_size must be positive when disk_path is set".into(),
                ));
            }
            let max_entry = (settings.disk_size as f64 * f) as u64;
            Some(DiskStorage::open(
                path,
                settings.disk_size,
                max_entry,
                stats.clone(),
            )?)
        }
        None => {
            stats
                .disk_index_ready
                .store(true, std::sync::atomic::Ordering::Relaxed);
            None
        }
    };
    Ok(TieredStorage::new(memory, disk, stats))
}

/// A serialized `CacheMeta`: `(internal, header)` as `CacheMeta::serialize` returns them.
pub(crate) type RawMeta = (Vec<u8>, Vec<u8>);

/// A change to a stored entry's meta.
pub(crate) enum MetaOp {
    /// Replace it (revalidation: `Storage::update_meta`).
    Replace(RawMeta),
    /// Make it stale at this instant, keeping serve-stale windows (`Storage::expire`).
    Expire(SystemTime),
}

impl MetaOp {
    /// The new serialized meta.
    pub(crate) fn apply(&self, current: &RawMeta) -> pingora::Result<RawMeta> {
        match self {
            MetaOp::Replace(meta) => Ok(meta.clone()),
            MetaOp::Expire(at) => {
                let mut meta = CacheMeta::deserialize(&current.0, &current.1)?;
                meta.expire_at(*at);
                meta.serialize()
            }
        }
    }
}
