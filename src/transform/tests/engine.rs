//! The engine: start-up self-test, pool, queue limit, timeout, probe,
//! format decision.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use super::fixtures::*;
use crate::transform::vips::Saver;
use crate::transform::{
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
