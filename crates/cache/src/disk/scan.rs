//! The directory walk: the start-up scan that loads the index and deletes crash leftovers, and
//! `clear`. Runs on the scan thread or a blocking thread only.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use pingora::cache::key::HashBinary;

use super::{DiskShared, MERGE_BATCH, index};

pub(super) fn clear_blocking(shared: &DiskShared) -> u64 {
    shared.epochs.bump_all();
    let mut removed = 0;
    walk(shared, &mut |found| match found {
        Found::Entry { key, path, .. } => {
            let _stripe = shared.stripe(&key).lock();
            if fs::remove_file(&path).is_ok() {
                removed += 1;
            }
            shared.index.remove(&key);
        }
        Found::Temp {
            path,
            owner: TempOwner::Stale,
        } => {
            let _ = fs::remove_file(path);
        }
        // In-flight writes of this process discard their own files (their epoch moved).
        Found::Temp { .. } => {}
    });
    shared.stats.disk.purged(removed);
    shared.sync_usage();
    removed
}

/// Whether a process runs with this PID (Linux `/proc`; without `/proc`, none does, and
/// foreign temporary files are treated as crash leftovers).
pub(super) fn process_alive(pid: u32) -> bool {
    pid > 0 && Path::new("/proc").join(pid.to_string()).exists()
}

/// Owner of a temporary file (see [`DiskShared::temp_owner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TempOwner {
    /// A fill in progress in this process.
    Us,
    /// A fill in progress in another live process sharing the directory.
    OtherProcess,
    /// Left by a crash: delete.
    Stale,
}

/// What the directory walk finds.
enum Found {
    Entry {
        key: HashBinary,
        path: PathBuf,
        meta: fs::Metadata,
    },
    Temp {
        path: PathBuf,
        owner: TempOwner,
    },
}

/// Visit entry and temporary files (`<root>/ab/cd/<name>`, and probe files in `<root>`).
/// Anything else (foreign files, misplaced names) is left alone.
fn walk(shared: &DiskShared, visit: &mut dyn FnMut(Found)) {
    let is_temp = |name: &str| name.starts_with('.') && name.ends_with(".tmp");
    for l1 in read_dir_logged(&shared.root) {
        let name = l1.file_name();
        let name = name.to_string_lossy();
        if is_temp(&name) {
            visit(Found::Temp {
                path: l1.path(),
                owner: shared.temp_owner(&name),
            });
            continue;
        }
        if !is_hex_dir(&name) {
            continue;
        }
        for l2 in read_dir_logged(&l1.path()) {
            let name2 = l2.file_name();
            let name2 = name2.to_string_lossy();
            if !is_hex_dir(&name2) {
                continue;
            }
            let prefix = format!("{name}{name2}");
            for f in read_dir_logged(&l2.path()) {
                let fname = f.file_name();
                let fname = fname.to_string_lossy();
                if is_temp(&fname) {
                    visit(Found::Temp {
                        path: f.path(),
                        owner: shared.temp_owner(&fname),
                    });
                    continue;
                }
                let Some(key) = parse_key(&fname).filter(|_| fname.starts_with(&prefix)) else {
                    continue;
                };
                let Ok(meta) = f.metadata() else { continue };
                if meta.is_file() {
                    visit(Found::Entry {
                        key,
                        path: f.path(),
                        meta,
                    });
                }
            }
        }
    }
}

fn read_dir_logged(dir: &Path) -> impl Iterator<Item = fs::DirEntry> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => Some(rd),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "disk cache scan: cannot read directory");
            None
        }
    };
    entries.into_iter().flatten().filter_map(|e| e.ok())
}

fn is_hex_dir(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_key(name: &str) -> Option<HashBinary> {
    if name.len() != 32 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut key = HashBinary::default();
    hex::decode_to_slice(name, &mut key).ok()?;
    Some(key)
}

/// The start-up scan (own thread): delete leftover temporary files, index the entries by
/// modification time, then enforce the bound.
pub(super) fn scan(shared: &DiskShared) {
    let started = std::time::Instant::now();
    let mut found: Vec<(HashBinary, u64, SystemTime)> = Vec::new();
    let mut stale_temps = 0u64;
    walk(shared, &mut |f| match f {
        Found::Entry { key, meta, .. } => {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((key, index::usage(meta.len()), mtime));
        }
        Found::Temp {
            path,
            owner: TempOwner::Stale,
        } => {
            if fs::remove_file(path).is_ok() {
                stale_temps += 1;
            }
        }
        Found::Temp { .. } => {}
    });
    found.sort_unstable_by_key(|e| std::cmp::Reverse(e.2));
    let batch: Vec<(HashBinary, u64)> = found.iter().map(|(k, u, _)| (*k, *u)).collect();
    for chunk in batch.chunks(MERGE_BATCH) {
        shared.index.merge_loaded(chunk);
    }
    let evicted = shared.index.finish_loading();
    shared.evict(evicted);
    shared.sync_usage();
    shared.loaded.store(true, Ordering::Release);
    shared.stats.disk_index_ready.store(true, Ordering::Relaxed);
    tracing::info!(
        entries = found.len(),
        stale_temp_files = stale_temps,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "disk cache index loaded"
    );
}
