//! Signals: SIGTERM drains in-flight requests within the grace period.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_inflight_request_finish() {
    let o = Origin::start("o").await;
    let mut gw = Gateway::builder()
        .grace("10s")
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    let req = gw
        .request(reqwest::Method::GET, "s.test", "/slow/1500")
        .send();
    let inflight = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    gw.signal(libc::SIGTERM);

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: readiness is red, new connections are refused.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err(),
        "listener closed while draining"
    );

    let r = inflight
        .await
        .expect("join")
        .expect("in-flight request completes");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "slept 1500");
    let code = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(5)));
    assert_eq!(code, Some(0), "exits cleanly");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "exits once drained, not after the whole 10 s grace period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_gateway_exits_promptly_on_sigterm() {
    let o = Origin::start("o").await;
    let mut gw = Gateway::builder()
        .grace("30s")
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    assert_eq!(gw.admin("/readyz").await.0, 200);
    gw.signal(libc::SIGTERM);
    let code = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(5)));
    assert_eq!(code, Some(0));
}
