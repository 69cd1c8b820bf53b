//! Hostile input through the real gateway: the committed bad-image corpus
//! (`tests/fixtures/bad/`, made by its `make.py`), enormous URLs and headers, and malformed
//! encodings in image URLs. Each gets its exact status and a short plain-text body, quickly,
//! and the process stays up and keeps serving good images.

use crate::common::*;

use std::path::Path;
use std::time::{Duration, Instant};

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::IMAGE_ROUTES as ROUTES;

/// Frames are let through so that the frame-count bomb meets the resolution limit.
async fn gateway(origin: &Origin) -> Gateway {
    Gateway::builder()
        .config(&site("s", &["s.test"], &[origin.addr], ""))
        .config(ROUTES)
        .config("[transform]\nmax_animation_frames = 1000\n")
        .start()
        .await
}

fn good_jpeg() -> Vec<u8> {
    testkit::encode(&testkit::quadrant_pixels(60, 40), 60, 40, 3, Format::Jpeg).to_vec()
}

/// Asserts the process is running and still transforms a good image.
async fn assert_healthy(gw: &mut Gateway) {
    assert_eq!(gw.wait_exit(Duration::ZERO), None, "the gateway died");
    let r = gw
        .get("s.test", "/img/unsafe/w:20/plain/f/good.jpg@png")
        .await;
    assert_eq!(r.status(), 200);
    let d = testkit::decode(&r.bytes().await.expect("body"));
    assert_eq!((d.width, d.height), (20, 13));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_corpus_gets_exact_statuses() {
    // (file, status, text in the body)
    let table: &[(&str, u16, &str)] = &[
        ("bomb.png", 422, "Invalid source image"),
        ("bomb.jpg", 422, "Invalid source image"),
        ("bomb.gif", 422, "Invalid source image"),
        ("frames.gif", 422, "Invalid source image"),
        ("truncated.jpg", 422, "Broken or unsupported image"),
        ("corrupt_header.jpg", 422, "Broken or unsupported image"),
        ("bad_crc.png", 422, "Broken or unsupported image"),
        ("polyglot.gif", 422, "Broken or unsupported image"),
        ("html.jpg", 415, "Source is not an image"),
        ("empty.jpg", 415, "Source is not an image"),
        ("image.svg", 415, "Source format svg is not allowed"),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let origin = Origin::start("o").await;
    origin.put("good.jpg", good_jpeg());
    for (name, _, _) in table {
        let bytes = std::fs::read(dir.join(name)).expect("corpus file");
        assert!(bytes.len() <= 10 * 1024, "{name} is too big for the corpus");
        origin.put(name, bytes);
    }
    origin.put(
        "screen.gif",
        std::fs::read(dir.join("screen.gif")).expect("screen.gif"),
    );
    let mut gw = gateway(&origin).await;

    for (name, status, text) in table {
        for options in ["w:50", "rs:fill:30:30/bl:1"] {
            let path = format!("/img/unsafe/{options}/plain/f/{name}@png");
            let t = Instant::now();
            let r = gw.get("s.test", &path).await;
            let got = r.status().as_u16();
            let ct = r.headers()["content-type"].clone();
            let body = r.text().await.expect("body");
            assert_eq!(got, *status, "{path}: {body}");
            assert!(body.contains(text), "{path}: {body:?} lacks {text:?}");
            assert!(body.len() < 200, "{path}: long body");
            assert_eq!(ct, "text/plain; charset=utf-8", "{path}");
            assert!(t.elapsed() < Duration::from_secs(5), "{path}: slow");
        }
    }
    // A 1x1 frame on a 65535x65535 logical screen is a 1x1 image: the screen is never allocated.
    let r = gw.get("s.test", "/img/unsafe/plain/f/screen.gif@png").await;
    assert_eq!(r.status(), 200);
    let d = testkit::decode(&r.bytes().await.expect("body"));
    assert_eq!((d.width, d.height), (1, 1));
    assert_healthy(&mut gw).await;
}

/// Sends `raw` on a new connection and reads until the gateway closes it (at most 5 s).
async fn raw_exchange(port: u16, raw: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The gateway may answer and close before it has read everything: a write error is fine.
    let _ = s.write_all(raw).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "neither answered nor closed within 5 s");
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enormous_urls_and_headers_are_refused_quickly() {
    let origin = Origin::start("o").await;
    origin.put("good.jpg", good_jpeg());
    let mut gw = gateway(&origin).await;
    let long = "a".repeat(64 * 1024);
    let request = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: s.test\r\n{extra}\r\n").into_bytes()
    };
    let many: String = (0..200)
        .map(|i| format!("x-h{i}: {}\r\n", "v".repeat(200)))
        .collect();
    // (what, request, status line, body text)
    let url16 = &long[..16 * 1024];
    let cases = [
        (
            "16 KiB image URL",
            request(&format!("/img/unsafe/w:10/plain/{url16}.jpg"), ""),
            "HTTP/1.1 414 ",
            "URI too long",
        ),
        (
            "16 KiB query",
            request(&format!("/id?q={url16}"), ""),
            "HTTP/1.1 414 ",
            "URI too long",
        ),
        (
            "100 KiB header",
            request("/id", &format!("x-big: {}\r\n", "b".repeat(100 * 1024))),
            "HTTP/1.1 431 ",
            "request header fields too large",
        ),
        (
            "200 headers of 200 bytes",
            request("/img/unsafe/w:10/plain/f/good.jpg", &many),
            "HTTP/1.1 431 ",
            "request header fields too large",
        ),
    ];
    for (what, raw, status, text) in &cases {
        let t = Instant::now();
        let answer = raw_exchange(gw.port, raw).await;
        let shown = &answer[..answer.len().min(300)];
        assert!(answer.starts_with(status), "{what}: {shown}");
        assert!(answer.ends_with(&format!("{text}\n")), "{what}: {shown}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{what}: {shown}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{what}: slow refusal");
    }
    assert_eq!(origin.hits(), 0, "nothing oversized reaches the origin");
    // Refused before routing, and still counted (as matching no site).
    let unrouted = |status| [("site", "-"), ("route", "-"), ("status", status)];
    assert_eq!(
        gw.metric_settled("imgforge_requests_total", &unrouted("414"), 2.0)
            .await,
        2.0
    );
    assert_eq!(
        gw.metric_settled("imgforge_requests_total", &unrouted("431"), 2.0)
            .await,
        2.0
    );

    // Beyond what Pingora reads at all (a target the `http` crate cannot hold, 1 MiB of header,
    // more than 256 fields): Pingora's own 400 or a closed connection, promptly.
    let cases = [
        (
            "64 KiB image URL",
            request(&format!("/img/unsafe/w:10/plain/{long}.jpg"), ""),
        ),
        (
            "2 MiB header",
            request("/id", &format!("x-huge: {}\r\n", "h".repeat(2 << 20))),
        ),
        (
            "300 headers",
            request(
                "/id",
                &(0..300)
                    .map(|i| format!("x-{i}: 1\r\n"))
                    .collect::<String>(),
            ),
        ),
    ];
    for (what, raw) in &cases {
        let answer = raw_exchange(gw.port, raw).await;
        let shown = &answer[..answer.len().min(300)];
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{what}: {shown}"
        );
    }
    assert_eq!(origin.hits(), 0);
    assert_healthy(&mut gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_encodings_in_image_urls_are_404_with_a_message() {
    let origin = Origin::start("o").await;
    origin.put("good.jpg", good_jpeg());
    let mut gw = gateway(&origin).await;
    let cases = [
        // Percent-encoding that does not decode, or decodes to bytes that are not UTF-8.
        ("/img/unsafe/w:10/plain/f/a%zzb.jpg", "encoding"),
        ("/img/unsafe/w:10/plain/f/a%c3%28.jpg", "encoding"),
        ("/img/unsafe/w:10/plain/f/a%2.jpg", "encoding"),
        // Base64 sources that are not Base64, or not a URL once decoded.
        ("/img/unsafe/w:10/!!!not*base64!!!", "Invalid"),
        ("/img/unsafe/w:10/aHR0cDovL2V4YW1w%ZZ", "Invalid"),
        ("/img/unsafe/w:10/_w_", "Invalid"),
    ];
    for (path, text) in cases {
        let r = gw.get("s.test", path).await;
        let status = r.status().as_u16();
        let body = r.text().await.expect("body");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains(text), "{path}: {body:?} lacks {text:?}");
        assert!(body.len() < 400, "{path}: long body");
    }
    assert_eq!(origin.hits(), 0, "refused before any fetch");
    assert_healthy(&mut gw).await;
}
