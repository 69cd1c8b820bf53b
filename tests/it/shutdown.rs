//! Signals: SIGTERM drains in-flight requests within the grace period.

use crate::common::*;
use std::time::{Duration, Instant};

/// A gateway with one site `s.test` in front of a fresh origin, with `grace` as its grace
/// period; the origin is returned so that it lives as long as the test.
async fn one_site(grace: &str) -> (Origin, Gateway) {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .grace(grace)
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    (o, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_inflight_request_finish() {
    let (_o, mut gw) = one_site("10s").await;
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
    let (_o, mut gw) = one_site("30s").await;
    assert_eq!(gw.admin("/readyz").await.0, 200);
    gw.signal(libc::SIGTERM);
    let code = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(5)));
    assert_eq!(code, Some(0));
}

/// A connection accepted just before the stop whose request arrives a moment later is served
/// (and told `Connection: close`) rather than closed with no reply: the race behind a request
/// that once failed during an upgrade, made deterministic by holding the request back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_accepted_before_sigterm_is_still_served() {
    use std::io::{Read, Write};
    let (_o, mut gw) = one_site("10s").await;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // Accepted by the gateway (not just queued in the kernel) before the signal.
    assert_eq!(
        gw.metric_settled("imgforge_connections_open", &[], 1.0)
            .await,
        1.0
    );
    gw.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(150)).await;
    conn.write_all(b"GET /id HTTP/1.1\r\nHost: s.test\r\n\r\n")
        .expect("write");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200 "), "reply: {reply:?}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    let code = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(5)));
    assert_eq!(code, Some(0));
}

/// Zero-downtime binary upgrade: a new process started with `-u` takes the listening sockets
/// when the old one gets SIGQUIT; requests sent all along never fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_hands_over_listeners_without_failed_requests() {
    let o = Origin::start("o").await;
    let mut old = Gateway::builder()
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    let old_pid = old.pid();
    let url = old.url("/id");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            // A new connection per request, so no request rides on a connection the old process
            // is closing.
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let (mut ok, mut failed) = (0usize, Vec::new());
            let t0 = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match client.get(&url).header("Host", "s.test").send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(format!("at {:?}: {e:?}", t0.elapsed())),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = old.spawn_upgrade();
    // The new process listens on the upgrade socket once it is ready to take the listeners
    // (after its own start-up, e.g. the libvips self-test): only then may the old one hand over.
    let sock = old.dir.path().join("upgrade.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "successor never opened {}",
            sock.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    old.signal(libc::SIGQUIT);
    // The old process keeps serving a few seconds while the new one accepts too, then drains.
    let code = tokio::task::block_in_place(|| old.wait_exit(Duration::from_secs(15)));
    assert!(code.is_some(), "old process exited:\n{}", old.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = load.await.expect("join");
    let new_log = std::fs::read_to_string(&new.log).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "failed requests: {failed:?}\nnew:\n{new_log}"
    );
    assert!(ok > 50, "only {ok} requests");

    // Now only the new process answers, on the same port.
    let r = old.get("s.test", "/id").await;
    assert_eq!(r.status(), 200);
    assert_ne!(new.child.id(), old_pid);
    assert!(new_log.contains("imgforge is serving"), "{new_log}");
}
