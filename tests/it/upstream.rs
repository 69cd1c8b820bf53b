//! Origin pools: balancing, failover, health checks, errors, forwarded headers.

use crate::common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_over_two_servers() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[a.addr, b.addr], ""))
        .start()
        .await;
    for _ in 0..20 {
        let r = gw.get("s.test", "/id").await;
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    }
    assert_eq!(a.hits(), 10);
    assert_eq!(b.hits(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_pins_a_path_to_one_server() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let gw = Gateway::builder()
        .config(&site(
            "s",
            &["s.test"],
            &[a.addr, b.addr],
            "lb = \"consistent_hash\"",
        ))
        .start()
        .await;
    let mut used_a = false;
    let mut used_b = false;
    for p in 0..8 {
        let (a0, b0) = (a.hits(), b.hits());
        for _ in 0..5 {
            // 404 from the origin: the path does not exist there, but one server answered.
            assert_eq!(gw.get("s.test", &format!("/p{p}")).await.status(), 404);
        }
        let (da, db) = (a.hits() - a0, b.hits() - b0);
        assert!(
            (da, db) == (5, 0) || (da, db) == (0, 5),
            "path {p}: a={da} b={db}"
        );
        used_a |= da > 0;
        used_b |= db > 0;
    }
    assert!(used_a && used_b, "8 paths spread over both servers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connect_retries_on_the_other_server() {
    let a = Origin::start("a").await;
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[a.addr, dead], ""))
        .start()
        .await;
    for _ in 0..10 {
        let r = gw.get("s.test", "/id").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.expect("body"), "a");
    }
    assert_eq!(a.hits(), 10);
    assert!(
        gw.metric("imgforge_upstream_errors_total", &[("site", "s")])
            .await
            >= 1.0,
        "connect failures are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_eject_and_restore_a_server() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let hc = "health_check = { path = \"/healthz\", interval = \"200ms\" }";
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[a.addr, b.addr], hc))
        .start()
        .await;

    b.state.healthy.store(false, Ordering::SeqCst);
    wait_until(|| async { !server_healthy(&gw, &b).await }).await;
    let before = b.hits();
    for _ in 0..10 {
        assert_eq!(gw.get("s.test", "/id").await.text().await.expect("b"), "a");
    }
    assert_eq!(b.hits(), before, "an ejected server gets no traffic");
    assert_eq!(
        gw.metric(
            "imgforge_upstream_healthy",
            &[("server", &b.addr.to_string())]
        )
        .await,
        0.0
    );

    b.state.healthy.store(true, Ordering::SeqCst);
    wait_until(|| async { server_healthy(&gw, &b).await }).await;
    for _ in 0..10 {
        gw.get("s.test", "/id").await;
    }
    assert!(b.hits() > before, "a restored server gets traffic again");
}

async fn server_healthy(gw: &Gateway, o: &Origin) -> bool {
    let (_, status) = gw.admin("/status").await;
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    v["sites"][0]["origin"]["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["address"] == o.addr.to_string())
        .and_then(|s| s["healthy"].as_bool())
        .expect("server listed")
}

async fn wait_until<F, Fut>(f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 5s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_origin_is_502_and_slow_origin_is_504() {
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let slow = Origin::start("slow").await;
    let gw = Gateway::builder()
        .config(&site("dead", &["dead.test"], &[dead], ""))
        .config(&site(
            "slow",
            &["slow.test"],
            &[slow.addr],
            "read_timeout = \"300ms\"",
        ))
        .start()
        .await;

    let r = gw.get("dead.test", "/id").await;
    assert_eq!(r.status(), 502);
    assert!(r.headers().contains_key("x-request-id"));
    assert!(r.text().await.expect("body").contains("bad gateway"));

    let r = gw.get("slow.test", "/slow/2000").await;
    assert_eq!(r.status(), 504);
    assert!(r.text().await.expect("body").contains("gateway timeout"));

    assert_eq!(gw.get("slow.test", "/slow/10").await.status(), 200);
    assert_eq!(
        gw.metric(
            "imgforge_requests_total",
            &[("site", "dead"), ("status", "502")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(
            "imgforge_requests_total",
            &[("site", "slow"), ("status", "504")]
        )
        .await,
        1.0
    );
    let logs = gw.logs();
    assert!(
        logs.contains("\"status\":504"),
        "access log records the 504"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_and_forwarded_headers() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&site(
            "s",
            &["s.test"],
            &[o.addr],
            "host_header = \"origin.internal\"\nrequest_headers = { \"X-Origin-Key\" = \"k1\" }",
        ))
        .start()
        .await;

    let r = gw
        .request(reqwest::Method::GET, "s.test", "/echo")
        .header("X-Request-Id", "req-42")
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.headers()["x-request-id"],
        "req-42",
        "echoed to the client"
    );
    let seen = r.text().await.expect("body");
    for line in [
        "x-request-id: req-42",
        "x-forwarded-for: 203.0.113.9, 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: s.test",
        "host: origin.internal",
        "x-origin-key: k1",
    ] {
        assert!(seen.contains(line), "missing {line:?} in\n{seen}");
    }

    // Without one, an id is generated, sent to the origin and echoed.
    let r = gw.get("s.test", "/echo").await;
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(id.len(), 32);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains(&format!("x-request-id: {id}"))
    );
    // A hostile id is replaced, not propagated.
    let r = gw
        .request(reqwest::Method::GET, "s.test", "/echo")
        .header("X-Request-Id", "a b<script>")
        .send()
        .await
        .expect("send");
    assert_ne!(r.headers()["x-request-id"], "a b<script>");
    assert!(gw.logs().contains("\"request_id\":\"req-42\""));
}
