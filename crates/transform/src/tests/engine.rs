//! The engine: start-up self-test, pool, queue limit, timeout, probe,
//! format decision.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use super::fixtures::*;
use crate::vips::Saver;
use crate::{
    Engine, EngineError, EngineSettings, Format, Job, PoolStats, ProcessingOptions, TransformError,
};

fn engine(workers: usize, queue: usize, timeout: Duration) -> Engine {
    Engine::start(EngineSettings {
        workers,
        queue,
        timeout,
        ..settings()
    })
    .expect("engine starts")
}

#[test]
fn start_self_tests_every_format_and_rejects_bad_settings() {
    let e = Engine::start(settings()).expect("all five formats work here");
    assert_eq!(e.stats().workers, 2);
    let bad = Engine::start(EngineSettings {
        formats: vec![Format::Svg],
        ..settings()
    });
    assert!(matches!(bad, Err(EngineError::Settings(_))), "{bad:?}");
    let bad = Engine::start(EngineSettings {
        workers: 0,
        ..settings()
    });
    assert!(matches!(bad, Err(EngineError::Settings(_))));
}

#[tokio::test]
async fn transform_and_probe_on_the_pool() {
    let e = engine(2, 4, Duration::from_secs(10));
    let src = quadrant_png(64, 32);
    let out = e
        .transform(Job::new(src.clone(), ProcessingOptions::default()).format(Format::Webp))
        .await
        .expect("transform");
    assert_eq!((out.format, out.width, out.height), (Format::Webp, 64, 32));
    let probe = e.probe(src.clone()).await.expect("probe");
    assert_eq!(
        (probe.format, probe.width, probe.height, probe.pages),
        (Format::Png, 64, 32, 1)
    );
    assert!(!probe.animated && !probe.alpha);
    assert_eq!(probe.bytes, src.len());
    let anim = e.info(animation(10, 10, Saver::Gif)).await.expect("info");
    assert!(anim.animated && anim.pages == 3 && anim.format == Format::Gif);
    assert_eq!(
        e.probe(Bytes::from_static(b"<html>")).await,
        Err(TransformError::NotAnImage)
    );
}

#[tokio::test]
async fn decide_sees_the_source_and_animation() {
    let e = engine(1, 4, Duration::from_secs(10));
    let job = Job::new(animation(20, 20, Saver::Gif), ProcessingOptions::default()).decide(
        |probe, animated| {
            assert_eq!(probe.format, Format::Gif);
            if animated { Format::Webp } else { Format::Jpeg }
        },
    );
    let out = e.transform(job).await.expect("transform");
    assert_eq!((out.format, out.pages), (Format::Webp, 3));
}

/// Holds the only worker until released.
fn hold(e: &Engine) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let e2 = e.clone();
    tokio::spawn(async move {
        let _ = e2
            .run(move |_| {
                let _ = rx.recv();
                Ok(())
            })
            .await;
    });
    tx
}

async fn wait_for(e: &Engine, want: impl Fn(PoolStats) -> bool) {
    for _ in 0..500 {
        if want(e.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("pool state never reached: {:?}", e.stats());
}

#[tokio::test]
async fn full_queue_is_overloaded() {
    let e = engine(1, 1, Duration::from_secs(10));
    let release = hold(&e);
    wait_for(&e, |s| s.busy == 1).await;
    let queued = tokio::spawn({
        let e = e.clone();
        async move {
            e.transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
                .await
        }
    });
    wait_for(&e, |s| s.queued == 1).await;
    let err = e
        .transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
        .await
        .expect_err("queue full");
    assert_eq!(err, TransformError::Overloaded);
    assert_eq!(err.status(), 429);
    release.send(()).expect("release");
    let out = queued.await.expect("join").expect("queued job runs");
    assert_eq!(out.format, Format::Jpeg);
}

#[tokio::test]
async fn timeout_counts_queue_time() {
    let e = engine(1, 4, Duration::from_millis(200));
    let release = hold(&e);
    wait_for(&e, |s| s.busy == 1).await;
    let err = e
        .transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
        .await
        .expect_err("stuck behind the held job");
    assert_eq!(err, TransformError::Timeout);
    assert_eq!(err.status(), 503);
    release.send(()).expect("release");
    // the expired job is skipped, the pool recovers
    wait_for(&e, |s| s.busy == 0 && s.queued == 0).await;
    e.transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
        .await
        .expect("runs again");
}

/// Counts what the engine reports.
#[derive(Default)]
struct Counts {
    queued: std::sync::atomic::AtomicUsize,
    dequeued: std::sync::atomic::AtomicUsize,
    started: std::sync::atomic::AtomicUsize,
    finished: std::sync::atomic::AtomicUsize,
    waited: std::sync::Mutex<Vec<Duration>>,
}

impl crate::JobObserver for Counts {
    fn queued(&self) {
        self.queued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn dequeued(&self, waited: Duration) {
        self.dequeued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.waited.lock().expect("lock").push(waited);
    }
    fn started(&self) {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn finished(&self, _ran: Duration) {
        self.finished
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Counts {
    fn get(&self) -> [usize; 4] {
        use std::sync::atomic::Ordering::SeqCst;
        [
            self.queued.load(SeqCst),
            self.dequeued.load(SeqCst),
            self.started.load(SeqCst),
            self.finished.load(SeqCst),
        ]
    }
}

#[tokio::test]
async fn observer_sees_queue_wait_and_runs() {
    let counts = std::sync::Arc::new(Counts::default());
    let e = Engine::start_observed(
        EngineSettings {
            workers: 1,
            queue: 1,
            ..settings()
        },
        counts.clone(),
    )
    .expect("engine starts");
    let release = hold(&e);
    wait_for(&e, |s| s.busy == 1).await;
    let queued = tokio::spawn({
        let e = e.clone();
        async move {
            e.transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
                .await
        }
    });
    wait_for(&e, |s| s.queued == 1).await;
    // Refused at once: counted as a (zero) queue wait, never started.
    let refused = e
        .transform(Job::new(quadrant_png(8, 8), ProcessingOptions::default()))
        .await;
    assert_eq!(refused.expect_err("full"), TransformError::Overloaded);
    assert_eq!(
        counts.get(),
        [3, 2, 1, 0],
        "held job runs, one waits, one refused"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).expect("release");
    queued.await.expect("join").expect("queued job runs");
    wait_for(&e, |s| s.busy == 0).await;
    assert_eq!(counts.get(), [3, 3, 2, 2]);
    let waited = counts.waited.lock().expect("lock").clone();
    assert!(
        waited[2] >= Duration::from_millis(50),
        "the queued job's wait covers the held job: {waited:?}"
    );
}

#[tokio::test]
async fn vips_tracks_the_memory_of_a_transform() {
    let e = engine(1, 4, Duration::from_secs(10));
    e.transform(Job::new(quadrant_png(256, 256), ProcessingOptions::default()).format(Format::Png))
        .await
        .expect("transform");
    let m = crate::vips_memory();
    assert!(m.max_bytes > 0, "{m:?}");
    assert!(m.max_bytes >= m.bytes, "{m:?}");
}
