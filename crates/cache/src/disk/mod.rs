//! The disk tier: one file per entry under `<root>/ab/cd/<32 hex digits of the key hash>`.
//!
//! - Format and checksums: [`entry`]. Every read verifies the whole file before anything is
//!   returned; a bad file is deleted and reported as a miss.
//! - Writes: `writer` (temporary file in the same directory, `fsync`, atomic rename).
//! - Bound: `index` (LRU by last access, in 4 KiB blocks), loaded from a directory scan on a
//!   background thread at start-up; until it is loaded, lookups simply open the file.
//! - All file I/O runs on blocking threads (`spawn_blocking`, or the scan thread), never on an
//!   event-loop thread.
//!
//! Concurrency: readers take no stripe lock. Renames (commit), deletions (purge, eviction, corrupt files)
//! and the index update that goes with each run under one of 256 stripe mutexes picked by the key,
//! taken only on blocking threads. An open file keeps its inode, so a reader of an entry that is
//! replaced or deleted meanwhile still reads the complete old file: no torn reads.

pub mod entry;
mod index;
mod scan;
mod writer;

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use pingora::cache::key::HashBinary;
use pingora::{Error, ErrorType, Result};

use super::epoch::Epochs;
use super::stats::CacheStats;
use super::{CacheError, MetaOp, RawMeta};
use entry::{EntryError, EntryHeader, HEADER_LEN};
use scan::{TempOwner, clear_blocking, process_alive, scan};
pub(crate) use writer::DiskWriter;
use writer::{TempFile, WriteError};

/// Files up to this length are read and verified in one piece and served from memory (and can be
/// promoted to the memory tier); longer ones are verified by a streaming pass, then streamed.
pub const WHOLE_READ_MAX: u64 = 4 * 1024 * 1024;
/// Chunk size when verifying or streaming a large entry.
const READ_CHUNK: usize = 256 * 1024;
/// A hit refreshes the file's modification time (the recency the start-up scan sees) at most
/// this often, so hot entries do not cost a metadata write per hit.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);
/// Scanned entries are merged into the index in batches, so the index lock is never held long.
const MERGE_BATCH: usize = 4096;

/// Identity of a file (device, inode): tells "the file I read" from "a newer file with the same
/// name".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

/// State shared by the storage, its writers, its hits and the scan thread.
pub(crate) struct DiskShared {
    root: PathBuf,
    max_entry: u64,
    /// Distinguishes this process's temporary files from leftovers of earlier runs.
    token: u64,
    seq: AtomicU64,
    index: index::Index,
    /// Set once the scan has merged the index and enforced the bound.
    loaded: std::sync::atomic::AtomicBool,
    stripes: Box<[Mutex<()>]>,
    epochs: Epochs,
    stats: Arc<CacheStats>,
}

impl DiskShared {
    fn entry_path(&self, key: &HashBinary) -> PathBuf {
        let hex = hex::encode(key);
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(&hex)
    }

    /// A fresh temporary path in `key`'s entry directory (same file system, so rename is atomic):
    /// `.<hex>.<token>.<pid>.<seq>.tmp`.
    fn temp_path(&self, key: &HashBinary) -> PathBuf {
        let hex = hex::encode(key);
        let name = self.temp_name(&hex);
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(name)
    }

    fn temp_name(&self, what: &str) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        format!(".{what}.{:016x}.{pid}.{seq}.tmp", self.token)
    }

    /// Who a temporary file belongs to, from its name.
    ///
    /// A file of another process that is still running is kept: during a graceful upgrade the
    /// old and new process share the directory for a while, and deleting the old one's fills
    /// would only make them fail. Anything else (crash leftovers, our own PID with another token,
    /// i.e. an earlier run in a container where we are PID 1 again, unparseable names) is stale.
    fn temp_owner(&self, name: &str) -> TempOwner {
        let mut parts = name.split('.').skip(2);
        let (Some(token), Some(pid)) = (parts.next(), parts.next()) else {
            return TempOwner::Stale;
        };
        if u64::from_str_radix(token, 16) == Ok(self.token) {
            return TempOwner::Us;
        }
        match pid.parse::<u32>() {
            Ok(pid) if pid != std::process::id() && process_alive(pid) => TempOwner::OtherProcess,
            _ => TempOwner::Stale,
        }
    }

    fn stripe(&self, key: &HashBinary) -> &Mutex<()> {
        &self.stripes[key[1] as usize % self.stripes.len()]
    }

    fn sync_usage(&self) {
        let (entries, bytes) = self.index.totals();
        self.stats.disk.set_usage(entries, bytes);
    }

    /// Delete evicted entries, unless a writer re-added the key since it was picked. The caller
    /// refreshes the usage gauges.
    fn evict(&self, victims: Vec<(HashBinary, u64)>) {
        if victims.is_empty() {
            return;
        }
        for (key, usage) in victims {
            let _stripe = self.stripe(&key).lock();
            if self.index.contains(&key) {
                continue;
            }
            match fs::remove_file(self.entry_path(&key)) {
                Ok(()) => self.stats.disk.evicted(1, usage),
                // Already gone (e.g. purged while the scan was running): nothing to free.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, "disk cache eviction failed");
                    self.stats.disk.error();
                }
            }
        }
    }

    /// Delete a file that failed verification, if it is still the entry (a newer, good file may
    /// have been renamed over it since it was opened).
    fn drop_corrupt(&self, key: &HashBinary, path: &Path, id: FileId, why: &dyn std::fmt::Display) {
        tracing::warn!(key = %hex::encode(key), error = %why, "dropping corrupt disk cache entry");
        self.stats.disk.corrupt();
        let _stripe = self.stripe(key).lock();
        if matches!(fs::symlink_metadata(path), Ok(m) if FileId::of(&m) == id) {
            let _ = fs::remove_file(path);
            self.index.remove(key);
        }
        drop(_stripe);
        self.sync_usage();
    }

    /// The index knows an entry whose file is gone (deleted behind our back): forget it.
    fn forget_missing(&self, key: &HashBinary, path: &Path) {
        if !self.index.contains(key) {
            return;
        }
        let _stripe = self.stripe(key).lock();
        if matches!(fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound) {
            self.index.remove(key);
        }
        drop(_stripe);
        self.sync_usage();
    }
}

/// A verified disk entry.
pub(crate) struct DiskHit {
    pub meta: RawMeta,
    pub body: DiskBody,
    pub id: FileId,
}

/// The body of a verified disk entry.
pub(crate) enum DiskBody {
    /// Read in one piece (files up to [`WHOLE_READ_MAX`]).
    Whole(Bytes),
    /// Streamed from the open file, which was verified first.
    File(FileHit),
}

/// Streams a large entry's body from its open (already verified) file.
pub(crate) struct FileHit {
    file: Arc<File>,
    body_offset: u64,
    body_len: u64,
    /// Read position and end, relative to the body.
    pos: u64,
    end: u64,
}

impl FileHit {
    /// Body length.
    pub(crate) fn len(&self) -> u64 {
        self.body_len
    }

    /// The next chunk of the selected range (read on a blocking thread), `None` at its end.
    pub(crate) async fn read(&mut self) -> Result<Option<Bytes>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let n = (self.end - self.pos).min(READ_CHUNK as u64) as usize;
        let file = self.file.clone();
        let at = self.body_offset + self.pos;
        let chunk = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            file.read_exact_at(&mut buf, at).map(|_| Bytes::from(buf))
        })
        .await
        .map_err(|e| internal("disk cache read task", e))?
        .map_err(|e| internal("disk cache read", e))?;
        self.pos += n as u64;
        Ok(Some(chunk))
    }

    /// Select `start..end` of the body (same rules as the memory hit) and rewind.
    pub(crate) fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let start = start as u64;
        if start >= self.body_len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start out of range {start} >= {}", self.body_len),
            );
        }
        self.pos = start;
        self.end = end.map_or(self.body_len, |e| (e as u64).min(self.body_len));
        Ok(())
    }
}

pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("{what}: {e}"))
}

/// The disk tier (see the module docs).
pub struct DiskStorage {
    shared: Arc<DiskShared>,
}

impl DiskStorage {
    /// Open (creating it if needed) the cache directory `root`, check that it is writable, and
    /// start loading the index on a background thread. Needs no async runtime.
    pub(crate) fn open(
        root: &Path,
        limit: u64,
        max_entry: u64,
        stats: Arc<CacheStats>,
    ) -> std::result::Result<Self, CacheError> {
        let not_writable = |source| CacheError::NotWritable {
            path: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root).map_err(not_writable)?;
        let shared = Arc::new(DiskShared {
            root: root.to_path_buf(),
            max_entry: max_entry.min(limit),
            token: rand::random(),
            seq: AtomicU64::new(0),
            index: index::Index::new(limit),
            loaded: std::sync::atomic::AtomicBool::new(false),
            stripes: (0..256).map(|_| Mutex::new(())).collect(),
            epochs: Epochs::new(),
            stats,
        });
        probe(&shared).map_err(not_writable)?;
        let scan_shared = shared.clone();
        std::thread::Builder::new()
            .name("cache-disk-scan".into())
            .spawn(move || scan(&scan_shared))
            .map_err(|source| CacheError::Io {
                what: "starting the disk index scan",
                source,
            })?;
        Ok(DiskStorage { shared })
    }

    /// The largest entry file admitted (header + meta + body).
    pub fn max_entry_size(&self) -> u64 {
        self.shared.max_entry
    }

    /// Whether the start-up scan is done: index merged, bound enforced.
    pub fn index_ready(&self) -> bool {
        self.shared.loaded.load(Ordering::Acquire)
    }

    /// Read and verify an entry. Counts a hit or miss; I/O errors count as errors and misses
    /// (the cache must not fail a request it could answer from the origin).
    pub(crate) async fn read(&self, key: HashBinary) -> Option<DiskHit> {
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || read_blocking(&shared, &key)).await;
        let stats = &self.shared.stats.disk;
        match res {
            Ok(Ok(Some(hit))) => {
                stats.hit();
                Some(hit)
            }
            Ok(Ok(None)) => {
                stats.miss();
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(key = %hex::encode(key), error = %e, "disk cache read failed");
                stats.error();
                stats.miss();
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "disk cache read task failed");
                stats.error();
                stats.miss();
                None
            }
        }
    }

    /// Delete an entry whose content verified but cannot be used (e.g. meta pingora can no
    /// longer parse after an upgrade).
    pub(crate) async fn drop_unusable(&self, key: HashBinary, id: FileId, why: String) {
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let path = shared.entry_path(&key);
            shared.drop_corrupt(&key, &path, id, &why);
        })
        .await;
    }

    /// Start writing an entry.
    pub(crate) async fn writer(&self, key: HashBinary, meta: RawMeta) -> DiskWriter {
        DiskWriter::start(self.shared.clone(), key, meta).await
    }

    /// Delete an entry and cancel in-flight writes of its stripe. Returns whether a file existed.
    pub(crate) async fn remove(&self, key: HashBinary) -> Result<bool> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || remove_blocking(&shared, &key))
            .await
            .map_err(|e| internal("disk cache purge task", e))?
            .map_err(|e| internal("disk cache purge", e))
    }

    /// Delete every entry and cancel every in-flight write. Returns the number deleted.
    pub(crate) async fn clear(&self) -> Result<u64> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || clear_blocking(&shared))
            .await
            .map_err(|e| internal("disk cache clear task", e))
    }

    /// Rewrite an entry's meta (same body, new file). Returns whether the entry exists.
    pub(crate) async fn rewrite_meta(&self, key: HashBinary, op: MetaOp) -> Result<bool> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || rewrite_blocking(&shared, &key, &op))
            .await
            .map_err(|e| internal("disk cache rewrite task", e))?
    }
}

/// Check the directory is writable the way entries will be written (create, write, sync,
/// remove), so that a bad `disk_path` fails at start-up, not at the first miss.
fn probe(shared: &DiskShared) -> io::Result<()> {
    use std::io::Write;
    let path = shared.root.join(shared.temp_name("probe"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let res = f.write_all(b"probe").and_then(|_| f.sync_data());
    let removed = fs::remove_file(&path);
    res.and(removed)
}

fn read_blocking(shared: &DiskShared, key: &HashBinary) -> io::Result<Option<DiskHit>> {
    let path = shared.entry_path(key);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            shared.forget_missing(key, &path);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let md = file.metadata()?;
    let id = FileId::of(&md);
    let len = md.len();
    if let Ok(modified) = md.modified()
        && SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age > TOUCH_INTERVAL)
    {
        // Best effort: only the recency seen by the next start-up scan depends on it. (Done
        // before verification; a corrupt file is deleted below anyway.)
        let _ = file.set_modified(SystemTime::now());
    }
    let hit = if len <= WHOLE_READ_MAX {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf)?;
        let d = match entry::decode(&buf, key) {
            Ok(d) => d,
            Err(e) => {
                shared.drop_corrupt(key, &path, id, &e);
                return Ok(None);
            }
        };
        let buf = Bytes::from(buf);
        DiskHit {
            meta: (buf[d.internal].to_vec(), buf[d.meta_header].to_vec()),
            body: DiskBody::Whole(buf.slice(d.body)),
            id,
        }
    } else {
        match verify_streaming(&file, len, key) {
            Ok((header, meta)) => {
                let body_offset = header.body_offset();
                DiskHit {
                    meta,
                    body: DiskBody::File(FileHit {
                        file: Arc::new(file),
                        body_offset,
                        body_len: header.body_len,
                        pos: 0,
                        end: header.body_len,
                    }),
                    id,
                }
            }
            Err(Verify::Bad(e)) => {
                shared.drop_corrupt(key, &path, id, &e);
                return Ok(None);
            }
            Err(Verify::Io(e)) => return Err(e),
        }
    };
    shared.index.touch(key);
    Ok(Some(hit))
}

enum Verify {
    Bad(EntryError),
    Io(io::Error),
}

/// Verify a large entry chunk by chunk; returns its header and meta.
fn verify_streaming(
    file: &File,
    len: u64,
    key: &HashBinary,
) -> std::result::Result<(EntryHeader, RawMeta), Verify> {
    // The file was just measured; running short means it was truncated behind our back.
    let io = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Verify::Bad(EntryError::TooShort(len))
        } else {
            Verify::Io(e)
        }
    };
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, 0).map_err(io)?;
    let header = EntryHeader::decode(&head, len, key).map_err(Verify::Bad)?;
    let mut meta = vec![0u8; header.meta_len()];
    file.read_exact_at(&mut meta, HEADER_LEN as u64)
        .map_err(io)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut at = header.body_offset();
    while at < len {
        let n = (len - at).min(READ_CHUNK as u64) as usize;
        file.read_exact_at(&mut buf[..n], at).map_err(io)?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    if crc.finalize() != header.checksum {
        return Err(Verify::Bad(EntryError::Checksum));
    }
    let header_meta = meta.split_off(header.internal_len as usize);
    Ok((header, (meta, header_meta)))
}

fn remove_blocking(shared: &DiskShared, key: &HashBinary) -> io::Result<bool> {
    let path = shared.entry_path(key);
    let _stripe = shared.stripe(key).lock();
    shared.epochs.bump(key);
    let found = match fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    shared.index.remove(key);
    drop(_stripe);
    if found {
        shared.stats.disk.purged(1);
    }
    shared.sync_usage();
    Ok(found)
}

fn rewrite_blocking(shared: &DiskShared, key: &HashBinary, op: &MetaOp) -> Result<bool> {
    let epoch = shared.epochs.get(key);
    let hit = match read_blocking(shared, key) {
        Ok(Some(hit)) => hit,
        Ok(None) => return Ok(false),
        Err(e) => return Err(internal("disk cache read", e)),
    };
    let meta = op.apply(&hit.meta)?;
    let io = |e| internal("disk cache rewrite", e);
    let mut tf = TempFile::create(shared, key, &meta).map_err(io)?;
    match &hit.body {
        DiskBody::Whole(b) => tf.append(b).map_err(io)?,
        DiskBody::File(fh) => {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut at = 0;
            while at < fh.body_len {
                let n = (fh.body_len - at).min(READ_CHUNK as u64) as usize;
                fh.file
                    .read_exact_at(&mut buf[..n], fh.body_offset + at)
                    .map_err(io)?;
                tf.append(&buf[..n]).map_err(io)?;
                at += n as u64;
            }
        }
    }
    match tf.commit(shared, epoch, Some(hit.id)) {
        Ok(_) => Ok(true),
        // A newer write replaced the entry: it exists, and it is newer than our rewrite.
        Err(WriteError::Superseded) => Ok(true),
        Err(WriteError::Purged) => Ok(false),
        Err(e) => Err(internal("disk cache rewrite", e)),
    }
}
