//! A site whose origin is a local directory.

use crate::common::*;
use std::io::{Read, Write};

fn raw_get(port: u16, host: &str, target: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_files_with_validators_and_ranges() {
    let root = tree(&[
        ("img/a.jpg", &pattern(5000)),
        ("index.html", b"<h1>hi</h1>"),
        ("style.css", b"body{}"),
    ]);
    let gw = Gateway::builder()
        .config(&root_site("local", &["l.test"], root.path()))
        .start()
        .await;

    let r = gw.get("l.test", "/img/a.jpg").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["content-length"], "5000");
    assert!(r.headers().contains_key("last-modified"));
    assert!(r.headers().contains_key("x-request-id"));
    let etag = r.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        pattern(5000).as_slice()
    );

    let r = gw
        .request(reqwest::Method::GET, "l.test", "/img/a.jpg")
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 304);

    let r = gw
        .request(reqwest::Method::GET, "l.test", "/img/a.jpg")
        .header("Range", "bytes=100-199")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/5000");
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        &pattern(5000)[100..200]
    );

    let r = gw
        .request(reqwest::Method::HEAD, "l.test", "/style.css")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css");
    assert_eq!(r.headers()["content-length"], "6");

    assert_eq!(
        gw.get("l.test", "/").await.text().await.expect("b"),
        "<h1>hi</h1>"
    );
    assert_eq!(gw.get("l.test", "/missing.jpg").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_attempts_never_leave_the_root() {
    let outside = tree(&[("secret.txt", b"TOP SECRET")]);
    let root = tree(&[("pub/ok.txt", b"ok")]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("pub/link.txt"),
    )
    .expect("symlink");
    let gw = Gateway::builder()
        .config(&root_site("local", &["l.test"], root.path()))
        .start()
        .await;
    let secret_name = outside
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let attempts = [
        "/../etc/passwd".to_string(),
        "/pub/../../etc/passwd".to_string(),
        "/%2e%2e/etc/passwd".to_string(),
        "/pub/%2e%2e%2f%2e%2e%2fetc/passwd".to_string(),
        "/..%2f..%2fetc%2fpasswd".to_string(),
        "/pub/..%5c..%5cetc%5cpasswd".to_string(),
        format!("/../{secret_name}/secret.txt"),
        "/pub/link.txt".to_string(),
        "/pub/ok.txt%00.jpg".to_string(),
        "/%252e%252e/etc/passwd".to_string(),
    ];
    for a in &attempts {
        let resp = raw_get(gw.port, "l.test", a);
        let status: u16 = resp
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(
            status == 400 || status == 404,
            "{a}: expected 400/404, got {status}\n{resp}"
        );
        assert!(
            !resp.contains("TOP SECRET") && !resp.contains("root:"),
            "{a} leaked"
        );
    }
    assert_eq!(
        gw.get("l.test", "/pub/ok.txt")
            .await
            .text()
            .await
            .expect("b"),
        "ok"
    );
}
