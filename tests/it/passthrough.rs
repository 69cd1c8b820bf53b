//! Transparency of the plain reverse proxy: methods, ranges, chunked and large bodies.

use crate::common::*;
use std::io::{Read, Write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_pass_through_intact() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;

    let r = gw.get("s.test", "/blob/49152").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "49152");
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        pattern(49152).as_slice()
    );

    // Chunked from the origin stays a correct stream.
    let r = gw.get("s.test", "/chunked/100000").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        pattern(100_000).as_slice()
    );

    // A large body (64 MiB) is streamed, not buffered whole.
    let n = 64 << 20;
    let r = gw.get("s.test", &format!("/blob/{n}")).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.expect("body");
    assert_eq!(body.len(), n);
    assert!(body.as_ref() == pattern(n).as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_range_requests() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;

    let r = gw
        .request(reqwest::Method::HEAD, "s.test", "/blob/1000")
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
    assert!(r.bytes().await.expect("body").is_empty());

    // The origin (axum/hyper) ignores Range; the proxy must pass a 200 through unchanged, and
    // pass the Range header on. A local-root site answers ranges itself (see local_root tests).
    let r = gw
        .request(reqwest::Method::GET, "s.test", "/echo")
        .header("Range", "bytes=0-9")
        .send()
        .await
        .expect("range");
    assert!(r.text().await.expect("body").contains("range: bytes=0-9"));
}

/// Several requests on one client connection: the gateway keeps it open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_client_connections_alive() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    let port = gw.port;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        for _ in 0..3 {
            s.write_all(b"GET /id HTTP/1.1\r\nHost: s.test\r\n\r\n")
                .expect("write");
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\no") {
                let n = s.read(&mut buf).expect("read");
                assert!(
                    n > 0,
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        }
    })
    .await
    .expect("join");
    assert_eq!(o.hits(), 3);
}
