//! Cache storage: lookup + full read of a 50 KB entry from the memory tier and from the disk tier
//! (page cache warm), through the `pingora_cache::Storage` trait as the proxy calls it.
//!
//! `cargo bench --bench cache` prints criterion's timings, then ops/s, p50 and p99 from a
//! separate loop of individually timed operations.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use imgforge::cache::{self, StorageSettings, TieredStorage};
use pingora::cache::trace::Span;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::http::ResponseHeader;
use tokio::runtime::Runtime;

const BODY: usize = 50 * 1024;

fn meta() -> CacheMeta {
    let mut h = ResponseHeader::build(200, None).expect("status");
    h.append_header("content-type", "image/webp")
        .expect("header");
    h.append_header("cache-control", "public, max-age=31536000")
        .expect("header");
    h.append_header("etag", "\"5f3c2a\"").expect("header");
    let now = SystemTime::now();
    CacheMeta::new(now + Duration::from_secs(3600), now, 60, 300, h)
}

async fn fill(s: &'static TieredStorage, key: &CacheKey) {
    let span = Span::inactive().handle();
    let mut mh = s
        .get_miss_handler(key, &meta(), &span)
        .await
        .expect("miss handler");
    let body = vec![0xA5u8; BODY];
    for c in body.chunks(16 * 1024) {
        mh.write_body(Bytes::copy_from_slice(c), false)
            .await
            .expect("write");
    }
    mh.finish().await.expect("finish");
    assert!(s.flush(Duration::from_secs(10)).await);
}

/// One cache hit as the proxy does it: lookup, then read the body to the end.
async fn hit(s: &'static TieredStorage, key: &CacheKey) -> usize {
    let span = Span::inactive().handle();
    let (meta, mut h) = s.lookup(key, &span).await.expect("lookup").expect("a hit");
    black_box(meta);
    let mut n = 0;
    while let Some(b) = h.read_body().await.expect("read") {
        n += b.len();
    }
    assert_eq!(n, BODY);
    n
}

fn percentiles(rt: &Runtime, name: &str, s: &'static TieredStorage, key: &CacheKey) {
    const N: usize = 20_000;
    let mut lat = Vec::with_capacity(N);
    let start = Instant::now();
    for _ in 0..N {
        let t = Instant::now();
        black_box(rt.block_on(hit(s, key)));
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort_unstable();
    println!(
        "{name:>6}: {:>9.0} ops/s   p50 {:>7.1} µs   p99 {:>7.1} µs   ({N} ops, one at a time)",
        N as f64 / total.as_secs_f64(),
        lat[N / 2].as_secs_f64() * 1e6,
        lat[N * 99 / 100].as_secs_f64() * 1e6,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let memory = cache::build(&StorageSettings {
        memory_size: 64 << 20,
        disk_path: None,
        disk_size: 0,
        ..StorageSettings::default()
    })
    .expect("memory cache");
    // Disk only: every hit opens, reads and verifies the file.
    let disk = cache::build(&StorageSettings {
        memory_size: 0,
        disk_path: Some(dir.path().to_path_buf()),
        disk_size: 256 << 20,
        ..StorageSettings::default()
    })
    .expect("disk cache");
    let key = CacheKey::new("/img/bench.webp", "");
    rt.block_on(fill(memory, &key));
    rt.block_on(fill(disk, &key));

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let mut g = c.benchmark_group("cache_hit_50k");
    g.throughput(Throughput::Bytes(BODY as u64));
    g.bench_function("memory", |b| b.iter(|| rt.block_on(hit(memory, &key))));
    g.bench_function("disk", |b| b.iter(|| rt.block_on(hit(disk, &key))));
    g.finish();
    c.final_summary();

    percentiles(&rt, "memory", memory, &key);
    percentiles(&rt, "disk", disk, &key);
}
