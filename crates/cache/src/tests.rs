//! Storage-level tests through the `pingora_cache::Storage` trait, with real `CacheMeta` and
//! real files in temporary directories.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pingora::cache::key::CacheHashKey;
use pingora::cache::trace::{Span, SpanHandle};
use pingora::cache::{CacheEntryId, CacheEntryKey, CacheKey, CacheMeta, PurgeOutcome};
use pingora::cache::{PurgeTarget, PurgeType, Storage};
use pingora::http::ResponseHeader;

use super::*;

fn span() -> SpanHandle {
    Span::inactive().handle()
}

fn meta_with(tag: &str) -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).unwrap();
    h.append_header("content-type", "image/webp").unwrap();
    h.append_header("x-fill", tag).unwrap();
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(300), now, 30, 60, h)
}

fn tag_of(meta: &CacheMeta) -> String {
    let v = meta.headers().get("x-fill").unwrap();
    v.to_str().unwrap().to_string()
}

fn memory_only(size: usize) -> StorageSettings {
    StorageSettings {
        memory_size: size as u64,
        disk_path: None,
        disk_size: 0,
        max_entry_fraction: 0.5,
    }
}

fn disk_only(dir: &Path, size: u64) -> StorageSettings {
    StorageSettings {
        memory_size: 0,
        disk_path: Some(dir.to_path_buf()),
        disk_size: size,
        max_entry_fraction: 0.5,
    }
}

fn tiered(dir: &Path) -> StorageSettings {
    StorageSettings {
        memory_size: 16 << 20,
        disk_path: Some(dir.to_path_buf()),
        disk_size: 64 << 20,
        max_entry_fraction: 0.5,
    }
}

fn body_for(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

/// Write `body` in `chunk`-sized pieces and finish. Returns whether `finish` succeeded.
async fn put(
    s: &'static TieredStorage,
    key: &CacheKey,
    tag: &str,
    body: &[u8],
    chunk: usize,
) -> bool {
    let mut mh = s
        .get_miss_handler(key, &meta_with(tag), &span())
        .await
        .unwrap();
    for c in body.chunks(chunk.max(1)) {
        mh.write_body(Bytes::copy_from_slice(c), false)
            .await
            .unwrap();
    }
    mh.write_body(Bytes::new(), true).await.unwrap();
    mh.finish().await.is_ok()
}

async fn get(s: &'static TieredStorage, key: &CacheKey) -> Option<(CacheMeta, Vec<u8>)> {
    let (meta, mut hit) = s.lookup(key, &span()).await.unwrap()?;
    let mut body = Vec::new();
    while let Some(b) = hit.read_body().await.unwrap() {
        body.extend_from_slice(&b);
    }
    Some((meta, body))
}

fn entry_path(dir: &Path, key: &CacheKey) -> PathBuf {
    let hex = hex::encode(key.combined_bin());
    dir.join(&hex[0..2]).join(&hex[2..4]).join(&hex)
}

/// All files under the cache dir (3 levels), split into (entries, temporary files).
fn files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                all.push(e.path());
            }
        }
    }
    all.into_iter()
        .partition(|p| !p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
}

fn disk_usage(dir: &Path) -> u64 {
    let (entries, _) = files(dir);
    entries
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len().div_ceil(4096) * 4096)
        .sum()
}

fn key(n: usize) -> CacheKey {
    CacheKey::new(format!("/img/{n}.webp"), "")
}

#[tokio::test]
async fn memory_round_trip_multi_chunk() {
    let s = build(&memory_only(1 << 20)).unwrap();
    let k = key(1);
    assert!(get(s, &k).await.is_none());
    let body = body_for(1, 50_000);
    assert!(put(s, &k, "one", &body, 7_000).await);
    let (meta, got) = get(s, &k).await.unwrap();
    assert_eq!(got, body);
    assert_eq!(tag_of(&meta), "one");
    assert!(meta.is_fresh(SystemTime::now()));
    assert_eq!(meta.stale_if_error_sec(), 60);
    let st = s.stats();
    assert_eq!((st.memory.hits, st.misses, st.memory.entries), (1, 1, 1));
}

#[tokio::test]
async fn disk_round_trip_small_and_streamed_with_seek() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&disk_only(dir.path(), 64 << 20)).unwrap();
    for (n, len) in [
        (1, 0),
        (2, 700_000),
        (3, disk::WHOLE_READ_MAX as usize + 123_456),
    ] {
        let k = key(n);
        let body = body_for(n as u8, len);
        assert!(put(s, &k, &format!("n{n}"), &body, 100_000).await);
        assert!(entry_path(dir.path(), &k).is_file());
        let (meta, got) = get(s, &k).await.unwrap();
        assert_eq!(tag_of(&meta), format!("n{n}"));
        assert!(got == body, "body of entry {n} differs");
        if len > 0 {
            let (_, mut hit) = s.lookup(&k, &span()).await.unwrap().unwrap();
            assert!(hit.can_seek());
            hit.seek(len - 10, None).unwrap();
            assert_eq!(hit.read_body().await.unwrap().unwrap(), body[len - 10..]);
            hit.seek(5, Some(9)).unwrap();
            assert_eq!(hit.read_body().await.unwrap().unwrap(), body[5..9]);
            assert!(hit.read_body().await.unwrap().is_none());
            assert!(hit.seek(len, None).is_err());
        }
    }
    let (_, temps) = files(dir.path());
    assert!(temps.is_empty(), "{temps:?}");
}

#[tokio::test]
async fn lookup_after_restart_hits_and_promotes() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&tiered(dir.path())).unwrap();
    let body = body_for(9, 120_000);
    assert!(put(s, &key(1), "persisted", &body, 16_384).await);
    assert!(s.flush(Duration::from_secs(10)).await);

    // "Restart": a new storage on the same directory, looked up before its index is loaded.
    let s2 = build(&tiered(dir.path())).unwrap();
    let (meta, got) = get(s2, &key(1)).await.unwrap();
    assert_eq!((tag_of(&meta).as_str(), got == body), ("persisted", true));
    assert_eq!(s2.stats().disk.hits, 1);
    // The disk hit was promoted: the next lookup is a memory hit.
    let (_, got) = get(s2, &key(1)).await.unwrap();
    assert!(got == body);
    assert_eq!((s2.stats().memory.hits, s2.stats().disk.hits), (1, 1));
    assert!(s2.wait_disk_index(Duration::from_secs(10)).await);
    assert_eq!(s2.stats().disk.entries, 1);
}

#[tokio::test]
async fn filling_three_times_the_disk_bound_stays_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 1 << 20;
    let s = build(&disk_only(dir.path(), bound)).unwrap();
    assert!(s.wait_disk_index(Duration::from_secs(10)).await);
    for n in 0..100 {
        assert!(put(s, &key(n), "fill", &body_for(n as u8, 30_000), 8_192).await);
        assert!(disk_usage(dir.path()) <= bound, "over the bound after {n}");
    }
    let st = s.stats().disk;
    assert!(st.evictions >= 60, "{st:?}");
    assert_eq!(st.bytes, disk_usage(dir.path()));
    // The most recent entries survive, the oldest are gone.
    assert!(get(s, &key(99)).await.is_some());
    assert!(get(s, &key(0)).await.is_none());

    // A restart with a smaller bound trims the directory once the index is loaded.
    let s2 = build(&disk_only(dir.path(), bound / 2)).unwrap();
    assert!(s2.wait_disk_index(Duration::from_secs(10)).await);
    assert!(disk_usage(dir.path()) <= bound / 2);
    assert!(
        get(s2, &key(99)).await.is_some(),
        "the newest entry survives the trim"
    );
}

#[tokio::test]
async fn recently_read_entries_outlive_unread_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&disk_only(dir.path(), 10 * 8192)).unwrap();
    assert!(s.wait_disk_index(Duration::from_secs(10)).await);
    for n in 0..10 {
        assert!(put(s, &key(n), "lru", &body_for(1, 5_000), 5_000).await);
    }
    assert!(get(s, &key(0)).await.is_some()); // key 0 becomes most recently used
    assert!(put(s, &key(10), "lru", &body_for(1, 5_000), 5_000).await);
    assert!(get(s, &key(0)).await.is_some());
    assert!(get(s, &key(1)).await.is_none());
}

/// Corrupt the stored file of a fresh entry with `damage`; the lookup must miss and delete it.
async fn corruption_is_dropped(len: usize, damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&disk_only(dir.path(), 64 << 20)).unwrap();
    let k = key(7);
    assert!(put(s, &k, "c", &body_for(3, len), 65_536).await);
    let path = entry_path(dir.path(), &k);
    damage(&path);
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
    assert!(!path.exists(), "corrupt file must be deleted");
    assert_eq!(s.stats().disk.corrupt, 1);
}

fn flip(path: &Path, at: impl FnOnce(u64) -> u64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len() as u64) as usize;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn truncated_entry_is_dropped() {
    corruption_is_dropped(40_000, |p| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len - 100).unwrap();
    })
    .await;
}

#[tokio::test]
async fn flipped_body_byte_is_dropped() {
    corruption_is_dropped(40_000, |p| flip(p, |len| len - 1000)).await;
}

#[tokio::test]
async fn flipped_meta_byte_is_dropped() {
    corruption_is_dropped(40_000, |p| flip(p, |_| disk::entry::HEADER_LEN as u64 + 3)).await;
}

#[tokio::test]
async fn flipped_header_byte_is_dropped() {
    corruption_is_dropped(40_000, |p| flip(p, |_| 41)).await;
}

#[tokio::test]
async fn flipped_byte_in_a_streamed_entry_is_dropped() {
    let len = disk::WHOLE_READ_MAX as usize + 10_000;
    corruption_is_dropped(len, |p| flip(p, |l| l / 2)).await;
}

#[tokio::test]
async fn dropped_miss_handler_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&tiered(dir.path())).unwrap();
    let k = key(1);
    let mut mh = s
        .get_miss_handler(&k, &meta_with("x"), &span())
        .await
        .unwrap();
    for _ in 0..5 {
        mh.write_body(Bytes::from(vec![1u8; 100_000]), false)
            .await
            .unwrap();
    }
    drop(mh);
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
    // The temporary file is deleted on a blocking thread: give it a moment.
    for _ in 0..200 {
        if files(dir.path()).1.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(files(dir.path()), (vec![], vec![]));
}

fn fill_len(b: u8) -> usize {
    10_000 + b as usize * 9_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_never_see_a_torn_entry() {
    for with_memory in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = disk_only(dir.path(), 256 << 20);
        if with_memory {
            settings.memory_size = 64 << 20;
        }
        let s = build(&settings).unwrap();
        let k = CacheKey::new("/torn", "");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4u8 {
            let k = k.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..12u8 {
                    let b = w * 16 + i;
                    let body = vec![b; fill_len(b)];
                    assert!(put(s, &k, &b.to_string(), &body, 64 * 1024).await);
                }
            }));
        }
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (k, done) = (k.clone(), done.clone());
            readers.push(tokio::spawn(async move {
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some((meta, body)) = get(s, &k).await {
                        let b: u8 = tag_of(&meta).parse().unwrap();
                        assert_eq!(body.len(), fill_len(b), "torn length");
                        assert!(body.iter().all(|&x| x == b), "torn content");
                        seen += 1;
                    }
                    tokio::task::yield_now().await;
                }
                seen
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut seen = 0;
        for r in readers {
            seen += r.await.unwrap();
        }
        assert!(seen > 0);
        assert!(s.flush(Duration::from_secs(10)).await);
        let (entries, temps) = files(dir.path());
        assert_eq!((entries.len(), temps.len()), (1, 0));
    }
}

#[tokio::test]
async fn leftover_temp_files_are_cleaned_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(5);
    let hex = hex::encode(k.combined_bin());
    let sub = dir.path().join(&hex[0..2]).join(&hex[2..4]);
    std::fs::create_dir_all(&sub).unwrap();
    // Names: .<hex>.<token>.<pid>.<seq>.tmp; PID 2147483632 is above any pid_max.
    let crashed = sub.join(format!(".{hex}.00000000deadbeef.2147483632.3.tmp"));
    std::fs::write(&crashed, b"half an entry").unwrap();
    let probe = dir.path().join(".probe.00000000deadbeef.2147483632.0.tmp");
    std::fs::write(&probe, b"probe").unwrap();
    let garbled = sub.join(format!(".{hex}.tmp"));
    std::fs::write(&garbled, b"?").unwrap();
    // A fill of another live process (graceful upgrade: old and new share the directory).
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live = sub.join(format!(".{hex}.00000000deadbeef.{}.1.tmp", other.id()));
    std::fs::write(&live, b"in progress elsewhere").unwrap();
    let foreign = dir.path().join("README");
    std::fs::write(&foreign, b"not ours").unwrap();

    let s = build(&disk_only(dir.path(), 1 << 20)).unwrap();
    assert!(s.wait_disk_index(Duration::from_secs(10)).await);
    let _ = other.kill();
    let _ = other.wait();
    assert!(!crashed.exists() && !probe.exists() && !garbled.exists());
    assert!(live.exists(), "a live process's fill is left alone");
    assert!(
        foreign.exists(),
        "files the cache did not write are left alone"
    );
    assert!(s.lookup(&k, &span()).await.unwrap().is_none());
}

#[tokio::test]
async fn memory_bound_and_entry_limit_are_respected() {
    let bound = 64 * 1024;
    let s = build(&memory_only(bound)).unwrap();
    for n in 0..50 {
        assert!(put(s, &key(n), "m", &body_for(n as u8, 4_000), 1_000).await);
        assert!(s.stats().memory.bytes as usize <= bound);
    }
    let st = s.stats().memory;
    assert!(st.evictions > 30 && st.entries < 16, "{st:?}");
    assert!(get(s, &key(49)).await.is_some());
    assert!(get(s, &key(0)).await.is_none());

    // Larger than half the bound (max_entry_fraction 0.5): refused, nothing stored.
    assert!(!put(s, &key(100), "big", &body_for(1, 40_000), 4_096).await);
    assert!(get(s, &key(100)).await.is_none());
    assert_eq!(s.stats().memory.rejected, 1);
    assert_eq!(s.max_entry_size(), bound / 2);
}

#[tokio::test]
async fn too_large_for_memory_still_goes_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tiered(dir.path());
    settings.memory_size = 64 * 1024;
    let s = build(&settings).unwrap();
    let body = body_for(2, 100_000);
    assert!(put(s, &key(1), "big", &body, 10_000).await);
    let (_, got) = get(s, &key(1)).await.unwrap();
    assert!(got == body);
    assert_eq!((s.stats().memory.entries, s.stats().disk.entries), (0, 1));
}

#[tokio::test]
async fn purge_removes_from_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&tiered(dir.path())).unwrap();
    for n in 0..4 {
        assert!(put(s, &key(n), "p", &body_for(1, 10_000), 4_096).await);
    }
    assert!(s.flush(Duration::from_secs(10)).await);

    assert!(s.purge_key(&key(0)).await.unwrap());
    assert!(!entry_path(dir.path(), &key(0)).exists());
    assert!(get(s, &key(0)).await.is_none());
    assert!(!s.purge_key(&key(0)).await.unwrap());

    let target = key(1).to_compact();
    let out = s
        .purge(
            PurgeTarget::Active(&target),
            PurgeType::Invalidation,
            &span(),
        )
        .await
        .unwrap();
    assert_eq!(out, PurgeOutcome::Purged(None));
    let identified = CacheEntryKey::identified(key(2).to_compact(), CacheEntryId::new(1));
    let out = s
        .purge(
            PurgeTarget::Exact(&identified),
            PurgeType::Invalidation,
            &span(),
        )
        .await
        .unwrap();
    assert_eq!(out, PurgeOutcome::NotFound, "entry IDs are never ours");
    assert!(get(s, &key(1)).await.is_none() && get(s, &key(2)).await.is_some());

    assert_eq!(s.purge_keys(&[key(2), key(3), key(9)]).await.unwrap(), 2);
    assert_eq!(files(dir.path()), (vec![], vec![]));

    for n in 0..3 {
        assert!(put(s, &key(n), "p", &body_for(1, 10_000), 4_096).await);
    }
    assert!(s.flush(Duration::from_secs(10)).await);
    assert_eq!(s.clear().await.unwrap(), 6, "3 entries in each tier");
    assert!(get(s, &key(1)).await.is_none());
    assert_eq!(files(dir.path()), (vec![], vec![]));
    let st = s.stats();
    assert_eq!(
        (st.memory.entries, st.disk.entries, st.disk.bytes),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn purge_wins_over_a_fill_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&tiered(dir.path())).unwrap();
    let k = key(1);
    let mut mh = s
        .get_miss_handler(&k, &meta_with("old"), &span())
        .await
        .unwrap();
    mh.write_body(Bytes::from_static(b"old body"), true)
        .await
        .unwrap();
    s.purge_key(&k).await.unwrap();
    assert!(mh.finish().await.is_err());
    assert!(s.flush(Duration::from_secs(10)).await);
    assert!(get(s, &k).await.is_none());
    assert!(!entry_path(dir.path(), &k).exists());
}

#[tokio::test]
async fn update_meta_and_expire_keep_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let s = build(&tiered(dir.path())).unwrap();
    let k = key(1);
    let body = body_for(4, 30_000);
    assert!(put(s, &k, "v1", &body, 8_000).await);
    assert!(s.update_meta(&k, &meta_with("v2"), &span()).await.unwrap());
    assert_eq!(tag_of(&get(s, &k).await.unwrap().0), "v2");
    assert!(s.flush(Duration::from_secs(10)).await);
    let s2 = build(&disk_only(dir.path(), 64 << 20)).unwrap();
    // Two storages in one process share a PID, so s2's scan would take s's temporary files for
    // crash leftovers: let it finish before s writes again (production has one per process).
    assert!(s2.wait_disk_index(Duration::from_secs(10)).await);
    let (meta, got) = get(s2, &k).await.unwrap();
    assert_eq!((tag_of(&meta).as_str(), got == body), ("v2", true));

    let target = k.to_compact();
    let out = s
        .expire(PurgeTarget::Active(&target), &span())
        .await
        .unwrap();
    assert_eq!(out, PurgeOutcome::Expired);
    let (meta, got) = get(s, &k).await.unwrap();
    assert!(!meta.is_fresh(SystemTime::now() + Duration::from_secs(1)));
    assert!(got == body);
    let (meta, _) = get(s2, &k).await.unwrap(); // the disk copy is expired too
    assert!(!meta.is_fresh(SystemTime::now() + Duration::from_secs(1)));
    let missing = key(2).to_compact();
    let out = s
        .expire(PurgeTarget::Active(&missing), &span())
        .await
        .unwrap();
    assert_eq!(out, PurgeOutcome::NotFound);
}

#[test]
fn settings_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&disk_only(&file.join("cache"), 1 << 20))
        .err()
        .unwrap();
    assert!(matches!(err, CacheError::NotWritable { .. }), "{err}");
    assert!(err.to_string().contains("is not writable"), "{err}");

    let mut bad = memory_only(0);
    assert!(matches!(open(&bad), Err(CacheError::Invalid(_))));
    bad.memory_size = 1 << 20;
    bad.max_entry_fraction = 0.0;
    assert!(matches!(open(&bad), Err(CacheError::Invalid(_))));
    assert!(matches!(
        open(&disk_only(dir.path(), 0)),
        Err(CacheError::Invalid(_))
    ));
}

mod crash;
