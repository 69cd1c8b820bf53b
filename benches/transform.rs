//! Transform engine benchmarks on the shared photo corpus
//! (`../shared/corpus`, or `$IMGFORGE_CORPUS`): per stage (header, decode,
//! decode with shrink-on-load) and end to end (→ 400 px JPEG q80 and WebP
//! q80), then a CPU-time summary comparable with the peer figures in
//! `shared/README.md` (CPU ms per image, one job at a time).
//!
//! Skips (successfully) when the corpus is missing.
//! Run: `cargo bench --bench transform`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, black_box};
use imgforge::imgproxy::ProcessingOptions;
use imgforge::transform::{EngineSettings, Format, Job, bench};

fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("IMGFORGE_CORPUS").map(PathBuf::from),
        // `../shared` beside the repository (benches run from the package root).
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("large.jpg").is_file())
}

fn job(source: &Bytes, format: Format) -> Job {
    let options = ProcessingOptions {
        width: 400,
        quality: 80,
        ..ProcessingOptions::default()
    };
    Job::new(source.clone(), options).format(format)
}

fn settings() -> EngineSettings {
    EngineSettings {
        max_src_resolution: 100_000_000,
        ..EngineSettings::default()
    }
}

/// Process CPU time (user + system) in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass, which outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let Some(dir) = corpus() else {
        println!(
            "transform bench: corpus not found (../shared/corpus or $IMGFORGE_CORPUS): skipped"
        );
        return;
    };
    if let Err(e) = bench::init() {
        println!("transform bench: libvips init failed: {e}: skipped");
        return;
    }
    let settings = settings();
    let files: Vec<(&str, Bytes)> = ["large.jpg", "medium.jpg"]
        .into_iter()
        .filter_map(|name| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|b| (name, Bytes::from(b)))
        })
        .collect();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("stage");
        for (name, src) in &files {
            group.bench_with_input(BenchmarkId::new("header", name), src, |b, src| {
                b.iter(|| black_box(bench::probe(src).map(|p| p.width)))
            });
            group.bench_with_input(BenchmarkId::new("decode_full", name), src, |b, src| {
                b.iter(|| black_box(bench::decode(src, 1)))
            });
            group.bench_with_input(BenchmarkId::new("decode_shrink8", name), src, |b, src| {
                b.iter(|| black_box(bench::decode(src, 8)))
            });
        }
        group.finish();
    }
    {
        let mut group = c.benchmark_group("end_to_end_400px_q80");
        for (name, src) in &files {
            for format in [Format::Jpeg, Format::Webp] {
                group.bench_with_input(BenchmarkId::new(format.name(), name), src, |b, src| {
                    b.iter(|| {
                        black_box(
                            bench::transform(&settings, job(src, format)).map(|o| o.bytes.len()),
                        )
                    })
                });
            }
        }
        group.finish();
    }
    c.final_summary();

    println!("\nCPU ms per image (one job at a time, 400 px, q80):");
    for (name, src) in &files {
        for format in [Format::Jpeg, Format::Webp] {
            let runs = 20;
            let start = cpu_seconds();
            let mut bytes = 0;
            for _ in 0..runs {
                match bench::transform(&settings, job(src, format)) {
                    Ok(out) => bytes = out.bytes.len(),
                    Err(e) => {
                        println!("  {name} → {format}: failed: {e}");
                        break;
                    }
                }
            }
            let ms = (cpu_seconds() - start) * 1000.0 / f64::from(runs);
            println!(
                "  {name:<11} → {:<4}: {ms:6.1} ms CPU  ({bytes} bytes)",
                format.name()
            );
        }
    }
    println!("peak RSS of this process: {} MB", peak_rss_kb() / 1024);
}

fn peak_rss_kb() -> i64 {
    // SAFETY: as in cpu_seconds.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as in cpu_seconds.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}
