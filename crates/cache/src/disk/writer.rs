//! Writing entries: a temporary file in the entry's own directory, filled, `fsync`ed, renamed.
//!
//! [`TempFile`] is the blocking part (only ever used on blocking threads); [`DiskWriter`] is the
//! async miss-handler side, which batches body chunks and hands them to `spawn_blocking`.
//!
//! Crash safety: the header written first is all zeros (invalid magic), and the real header is
//! written only after the whole body, then the data is `fsync`ed, then the file is renamed over
//! the entry. A crash at any point leaves either the previous entry or the new complete one under
//! the entry name, plus possibly a temporary file, which the next start-up deletes. (The
//! directory is not `fsync`ed after the rename: after a power loss the rename itself may be lost,
//! which only loses the new entry.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use pingora::cache::key::HashBinary;

use super::entry::{EntryHeader, HEADER_LEN};
use super::index::usage;
use super::{DiskShared, FileId};
use crate::RawMeta;

/// Body bytes buffered in memory before one blocking write.
const FLUSH_AT: usize = 256 * 1024;

/// Why a disk write was not committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("entry larger than the disk tier's entry limit")]
    TooLarge,
    #[error("purged while being written")]
    Purged,
    #[error("entry replaced while its meta was being rewritten")]
    Superseded,
    #[error("disk cache I/O: {0}")]
    Io(#[from] io::Error),
    #[error("disk cache write task failed: {0}")]
    Task(String),
}

/// A temporary entry file being filled (blocking I/O only). Dropping it deletes the file.
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    key: HashBinary,
    crc: crc32fast::Hasher,
    internal_len: u32,
    header_len: u32,
    body_len: u64,
    armed: bool,
}

impl TempFile {
    /// Create the temporary file next to `key`'s entry and write a placeholder header and meta.
    pub(crate) fn create(
        shared: &DiskShared,
        key: &HashBinary,
        meta: &RawMeta,
    ) -> io::Result<Self> {
        let internal_len = len_u32(meta.0.len())?;
        let header_len = len_u32(meta.1.len())?;
        let path = shared.temp_path(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut tf = TempFile {
            path,
            file,
            key: *key,
            crc: crc32fast::Hasher::new(),
            internal_len,
            header_len,
            body_len: 0,
            armed: true,
        };
        // Zeros: an invalid magic until the real header goes in at commit.
        tf.file.write_all(&[0u8; HEADER_LEN])?;
        tf.file.write_all(&meta.0)?;
        tf.file.write_all(&meta.1)?;
        tf.crc.update(&meta.0);
        tf.crc.update(&meta.1);
        Ok(tf)
    }

    /// Append body bytes.
    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.crc.update(data);
        self.body_len += data.len() as u64;
        Ok(())
    }

    /// Total length of the finished file.
    pub(crate) fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.internal_len as u64 + self.header_len as u64 + self.body_len
    }

    /// Write the header, `fsync`, and rename over the entry, then index it and evict.
    ///
    /// `epoch` is the key's purge epoch when the write started; `expect` (for meta rewrites) is
    /// the identity of the file that was read, which must still be the entry.
    pub(crate) fn commit(
        mut self,
        shared: &DiskShared,
        epoch: u64,
        expect: Option<FileId>,
    ) -> Result<u64, WriteError> {
        let header = EntryHeader {
            key: self.key,
            internal_len: self.internal_len,
            header_len: self.header_len,
            body_len: self.body_len,
            checksum: self.crc.clone().finalize(),
        };
        self.file.write_all_at(&header.encode(), 0)?;
        self.file.sync_data()?;
        let len = self.file_len();
        let final_path = shared.entry_path(&self.key);
        let evicted = {
            // Rename and index update under the key's stripe lock: eviction, purge and
            // corrupt-file deletion check the index (or the inode) under the same lock, so none
            // of them can delete this new file by mistake.
            let _stripe = shared.stripe(&self.key).lock();
            if shared.epochs.get(&self.key) != epoch {
                return Err(WriteError::Purged);
            }
            if let Some(expected) = expect {
                match fs::metadata(&final_path) {
                    Ok(m) if FileId::of(&m) == expected => {}
                    _ => return Err(WriteError::Superseded),
                }
            }
            fs::rename(&self.path, &final_path)?;
            self.armed = false;
            shared.index.insert(self.key, usage(len))
        };
        shared.stats.disk.insert();
        shared.evict(evicted);
        shared.sync_usage();
        Ok(self.body_len)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Nothing to report to: a leftover is also removed at the next start-up.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn len_u32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::other("cache meta larger than 4 GiB"))
}

/// Drop a temporary file on a blocking thread when a runtime is around (unlink is a syscall;
/// event-loop threads should not make it), inline otherwise.
fn discard(tf: TempFile) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(move || drop(tf));
        }
        Err(_) => drop(tf),
    }
}

/// The disk half of a miss handler.
pub(crate) struct DiskWriter {
    shared: Arc<DiskShared>,
    epoch: u64,
    /// `None` once failed or rejected, or (briefly) while a blocking write owns it.
    temp: Option<TempFile>,
    pending: Vec<Bytes>,
    pending_len: usize,
    meta_len: u64,
    body_len: u64,
    failure: Option<WriteError>,
}

impl DiskWriter {
    /// Start a write: create the temporary file (on a blocking thread). Failures are recorded
    /// and reported by [`Self::commit`]; writing a response must not fail because of the cache.
    pub(crate) async fn start(shared: Arc<DiskShared>, key: HashBinary, meta: RawMeta) -> Self {
        let epoch = shared.epochs.get(&key);
        let meta_len = (meta.0.len() + meta.1.len()) as u64;
        let mut w = DiskWriter {
            shared: shared.clone(),
            epoch,
            temp: None,
            pending: Vec::new(),
            pending_len: 0,
            meta_len,
            body_len: 0,
            failure: None,
        };
        if HEADER_LEN as u64 + meta_len > shared.max_entry {
            w.fail(WriteError::TooLarge);
            return w;
        }
        let created =
            tokio::task::spawn_blocking(move || TempFile::create(&shared, &key, &meta)).await;
        match created {
            Ok(Ok(tf)) => w.temp = Some(tf),
            Ok(Err(e)) => w.fail(WriteError::Io(e)),
            Err(e) => w.fail(WriteError::Task(e.to_string())),
        }
        w
    }

    fn fail(&mut self, e: WriteError) {
        match e {
            WriteError::TooLarge => self.shared.stats.disk.reject(),
            WriteError::Purged | WriteError::Superseded => {}
            WriteError::Io(_) | WriteError::Task(_) => {
                tracing::warn!(error = %e, "disk cache write failed");
                self.shared.stats.disk.error();
            }
        }
        self.pending = Vec::new();
        self.pending_len = 0;
        if let Some(tf) = self.temp.take() {
            discard(tf);
        }
        if self.failure.is_none() {
            self.failure = Some(e);
        }
    }

    /// Append body bytes; written out in batches of [`FLUSH_AT`].
    pub(crate) async fn write(&mut self, data: Bytes) {
        if self.failure.is_some() {
            return;
        }
        self.body_len += data.len() as u64;
        if HEADER_LEN as u64 + self.meta_len + self.body_len > self.shared.max_entry {
            self.fail(WriteError::TooLarge);
            return;
        }
        if data.is_empty() {
            return;
        }
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len >= FLUSH_AT {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Some(mut tf) = self.temp.take() else {
            return;
        };
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        // If this future is dropped mid-write, the task still owns `tf` and drops it (deleting
        // the file) when it ends, since nobody awaits its output.
        let res = tokio::task::spawn_blocking(move || {
            for c in &chunks {
                tf.append(c)?;
            }
            Ok::<_, io::Error>(tf)
        })
        .await;
        match res {
            Ok(Ok(tf)) => self.temp = Some(tf),
            Ok(Err(e)) => self.fail(WriteError::Io(e)),
            Err(e) => self.fail(WriteError::Task(e.to_string())),
        }
    }

    /// Finish: flush, then header + `fsync` + rename + index on a blocking thread. Returns the
    /// body size.
    pub(crate) async fn commit(mut self) -> Result<u64, WriteError> {
        self.flush().await;
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let Some(tf) = self.temp.take() else {
            return Err(WriteError::Task("no temporary file".into()));
        };
        let shared = self.shared.clone();
        let epoch = self.epoch;
        let res = tokio::task::spawn_blocking(move || tf.commit(&shared, epoch, None)).await;
        match res {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => {
                if matches!(e, WriteError::Io(_)) {
                    tracing::warn!(error = %e, "disk cache commit failed");
                    self.shared.stats.disk.error();
                }
                Err(e)
            }
            Err(e) => Err(WriteError::Task(e.to_string())),
        }
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        // Dropped without commit (client gone, upstream error): nothing becomes visible.
        if let Some(tf) = self.temp.take() {
            discard(tf);
        }
    }
}

impl FileId {
    /// The identity of the file `m` describes.
    pub(crate) fn of(m: &fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}
