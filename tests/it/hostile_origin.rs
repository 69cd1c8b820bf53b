//! Origins that misbehave on purpose: bytes dribbled slowly, a `Content-Length` the body does not
//! match, a `Content-Type` that lies. The gateway answers in bounded time with the right status,
//! and nothing broken is cached (the next request goes to the origin again).

use crate::common::*;

use std::time::{Duration, Instant};

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;

use crate::common::IMAGE_ROUTES_CACHED_ROOT as ROUTES;

/// A gateway in front of `origin` with a 1 s download/transform budget.
async fn gateway(origin: &RawOrigin) -> Gateway {
    Gateway::builder()
        .config(&site(
            "s",
            &["s.test"],
            &[origin.addr],
            "read_timeout = \"5s\"",
        ))
        .config(ROUTES)
        .config("[transform]\ntimeout = \"1s\"\n")
        .start()
        .await
}

fn jpeg() -> Vec<u8> {
    testkit::encode(&testkit::quadrant_pixels(120, 80), 120, 80, 3, Format::Jpeg).to_vec()
}

/// Status, elapsed time and body of one `GET`.
async fn timed(gw: &Gateway, path: &str) -> (u16, Duration, String) {
    let t = Instant::now();
    let r = gw.get("s.test", path).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    (status, t.elapsed(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbling_origin_times_out_with_504_and_is_not_cached() {
    let origin = RawOrigin::start().await;
    let img = jpeg();
    // 16 bytes every 100 ms: the whole image would take tens of seconds.
    let slow = Script::ok("image/jpeg", &img).dribble(16, Duration::from_millis(100), false);
    origin.script("/body.jpg", slow.clone());
    origin.script(
        "/head.jpg",
        slow.dribble(4, Duration::from_millis(100), true),
    );
    let gw = gateway(&origin).await;

    for name in ["body", "head"] {
        let path = format!("/img/unsafe/w:20/plain/{name}.jpg");
        let source = format!("/{name}.jpg");
        for attempt in 1..=2 {
            let (status, took, body) = timed(&gw, &path).await;
            assert_eq!(status, 504, "{name} #{attempt}: {body}");
            assert!(body.contains("timed out"), "{body}");
            assert!(
                took >= Duration::from_millis(900) && took < Duration::from_secs(3),
                "{name} #{attempt}: answered after {took:?}, the budget is 1 s"
            );
            // Nothing was cached: every attempt goes to the origin.
            assert_eq!(origin.hits(&source), attempt, "{name}");
        }
    }
    // The gateway is not stuck: a prompt origin answer goes through.
    origin.script("/fast.jpg", Script::ok("image/jpeg", &img));
    assert_eq!(timed(&gw, "/img/unsafe/w:20/plain/fast.jpg").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_is_502_and_never_cached() {
    let origin = RawOrigin::start().await;
    let img = jpeg();
    // Declares the whole image, sends half, closes.
    let short = Script::ok("image/jpeg", &img[..img.len() / 2])
        .content_length(img.len())
        .then_close();
    origin.script("/short.jpg", short.clone());
    origin.script("/short.bin", short);
    let gw = gateway(&origin).await;

    for attempt in 1..=2 {
        let (status, _, body) = timed(&gw, "/img/unsafe/w:20/plain/short.jpg").await;
        assert_eq!(status, 502, "#{attempt}: {body}");
        assert_eq!(
            origin.hits("/short.jpg"),
            attempt,
            "a truncated source is not cached"
        );
    }
    // A cached proxy route: the client sees the response cut short, and the truncated copy is
    // not stored (the next request goes to the origin again).
    for attempt in 1..=2 {
        let r = gw.get("s.test", "/short.bin").await;
        let body = r.bytes().await;
        assert!(
            body.as_ref().map_or(true, |b| b.len() < img.len()),
            "#{attempt}: a truncated body must not look complete"
        );
        assert_eq!(origin.hits("/short.bin"), attempt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_body_is_cut_at_content_length_and_the_connection_not_reused() {
    let origin = RawOrigin::start().await;
    let img = jpeg();
    // A complete image, then bytes beyond the declared length on the same connection.
    let mut body = img.clone();
    body.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!");
    origin.script(
        "/long.jpg",
        Script::ok("image/jpeg", &body).content_length(img.len()),
    );
    origin.script("/next.jpg", Script::ok("image/jpeg", &img));
    origin.script(
        "/long.txt",
        Script::ok("text/plain", b"0123456789trailing junk").content_length(10),
    );
    origin.script("/next.txt", Script::ok("text/plain", b"next"));
    let gw = gateway(&origin).await;

    let (status, _, _) = timed(&gw, "/img/unsafe/w:20/plain/long.jpg").await;
    assert_eq!(status, 200, "the declared length holds a whole image");
    // The extra bytes are never read as the answer to the next request.
    for _ in 0..3 {
        let r = gw.get("s.test", "/img/unsafe/w:21/plain/next.jpg").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
    }
    let r = gw.get("s.test", "/long.txt").await;
    assert_eq!(r.text().await.expect("body"), "0123456789");
    for _ in 0..3 {
        let r = gw.get("s.test", "/next.txt").await;
        assert_eq!(r.text().await.expect("body"), "next");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_is_not_trusted() {
    let origin = RawOrigin::start().await;
    origin.script("/plain.jpg", Script::ok("text/plain", &jpeg()));
    origin.script(
        "/page.jpg",
        Script::ok(
            "image/jpeg",
            b"<!DOCTYPE html><html><body>hello</body></html>",
        ),
    );
    let gw = gateway(&origin).await;

    // A JPEG labelled text/plain is still a JPEG: the bytes are sniffed.
    let r = gw
        .get("s.test", "/img/unsafe/w:30/plain/plain.jpg@png")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let d = testkit::decode(&r.bytes().await.expect("body"));
    assert_eq!(d.width, 30);
    // HTML labelled image/jpeg is refused.
    let (status, _, body) = timed(&gw, "/img/unsafe/w:30/plain/page.jpg").await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("not an image"), "{body}");
}
