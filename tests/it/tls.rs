//! TLS: a rustls listener on the edge, and TLS (with SNI) towards an origin.

use crate::common::*;

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["tls.test".into(), "localhost".into()])
        .expect("cert");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).expect("write cert");
    std::fs::write(&k, cert.key_pair.serialize_pem()).expect("write key");
    (c, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_and_tls_origin() {
    let origin = Origin::start("o").await;
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(certs.path());
    let tls_port = free_port();

    // Gateway B terminates TLS and proxies to the plain origin.
    let b = Gateway::builder()
        .server(&format!(
            "[server.tls]\nlisten = [\"127.0.0.1:{tls_port}\"]\ncert = \"{}\"\nkey = \"{}\"",
            cert.display(),
            key.display()
        ))
        .config(&site("b", &["tls.test"], &[origin.addr], ""))
        .start()
        .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let r = client
        .get(format!("https://127.0.0.1:{tls_port}/echo"))
        .header("Host", "tls.test")
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status(), 200);
    let seen = r.text().await.expect("body");
    assert!(seen.contains("x-forwarded-proto: https"), "{seen}");
    // The plain listener still works next to the TLS one.
    assert_eq!(b.get("tls.test", "/id").await.status(), 200);

    // Gateway A reaches B over TLS with SNI (self-signed: verification off for this pool).
    let a = Gateway::builder()
        .config(&site(
            "a",
            &["a.test"],
            &[std::net::SocketAddr::from(([127, 0, 0, 1], tls_port))],
            "tls = true\nsni = \"tls.test\"\nverify_cert = false\nhost_header = \"tls.test\"",
        ))
        .start()
        .await;
    let r = a.get("a.test", "/id").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "o");

    // With verification on, the self-signed origin is refused: 502, not a silent downgrade.
    let strict = Gateway::builder()
        .config(&site(
            "a",
            &["a.test"],
            &[std::net::SocketAddr::from(([127, 0, 0, 1], tls_port))],
            "tls = true\nsni = \"tls.test\"\nhost_header = \"tls.test\"",
        ))
        .start()
        .await;
    assert_eq!(strict.get("a.test", "/id").await.status(), 502);
}
