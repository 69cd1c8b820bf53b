//! The connection cap on the public listeners (`server.max_connections`), over raw TCP so that
//! which connection carries which request is under the test's control.

use crate::common::*;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off `s`: status and body (by Content-Length, or to EOF without one).
async fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("response within 5 s")
            .expect("read");
        assert!(n > 0, "connection closed before a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().expect("status");
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let mut body = buf[head_end..].to_vec();
    match len {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut chunk).await.expect("read body");
                assert!(n > 0, "body cut short");
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            s.read_to_end(&mut body).await.expect("read to end");
        }
    }
    (status, String::from_utf8_lossy(&body).to_string())
}

async fn get(s: &mut TcpStream, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: s.test\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    read_response(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_until_one_closes() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .server("max_connections = 2")
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    let addr = format!("127.0.0.1:{}", gw.port);
    let connect = || TcpStream::connect(addr.clone());

    // Two keep-alive connections, idle after one request each, hold both places.
    let mut a = connect().await.expect("a");
    let mut b = connect().await.expect("b");
    assert_eq!(get(&mut a, "/id").await, (200, "o".into()));
    assert_eq!(get(&mut b, "/id").await, (200, "o".into()));

    // The third is answered 503 and closed without reaching the origin.
    let mut c = connect().await.expect("c");
    let (status, body) = get(&mut c, "/id").await;
    assert_eq!((status, body.as_str()), (503, "too many connections\n"));
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut rest))
        .await
        .expect("closed by the gateway")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing after the refusal");
    assert_eq!(o.hits(), 2);
    assert_eq!(gw.metric("imgforge_connections_open", &[]).await, 2.0);
    assert_eq!(
        gw.metric("imgforge_connections_refused_total", &[]).await,
        1.0
    );

    // The admitted connections keep working.
    assert_eq!(get(&mut b, "/id").await.0, 200);

    // Once one closes, its place is free again.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.metric("imgforge_connections_open", &[]).await > 1.0 {
        assert!(Instant::now() < deadline, "closed connection still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut d = connect().await.expect("d");
    assert_eq!(get(&mut d, "/id").await, (200, "o".into()));
    assert_eq!(gw.metric("imgforge_connections_open", &[]).await, 2.0);
}
