//! SIGHUP reloads sites, routes and pools atomically; an invalid config is refused.

use crate::common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_config_and_refuses_a_bad_one() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let gw = Gateway::builder()
        .config(&site("s", &["s.test"], &[a.addr], ""))
        .start()
        .await;
    assert_eq!(gw.get("s.test", "/id").await.text().await.expect("b"), "a");
    assert_eq!(gw.get("new.test", "/id").await.status(), 421);

    // Point the site at b, add a host and a health-checked pool, then SIGHUP.
    let conf = gw.dir.path().join("imgforge.toml");
    let text = std::fs::read_to_string(&conf).expect("read");
    let head = text.split("[[site]]").next().expect("head").to_string();
    let hc = "health_check = { path = \"/healthz\", interval = \"100ms\" }";
    std::fs::write(
        &conf,
        format!(
            "{head}{}",
            site("s", &["s.test", "new.test"], &[b.addr], hc)
        ),
    )
    .expect("write");
    gw.signal(libc::SIGHUP);
    let mut switched = false;
    for _ in 0..100 {
        if gw.get("s.test", "/id").await.text().await.expect("b") == "b" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(switched, "the reload took effect:\n{}", gw.logs());
    assert_eq!(
        gw.get("new.test", "/id").await.text().await.expect("b"),
        "b"
    );
    // The new pool's health checks run.
    b.state
        .healthy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut ejected = false;
    for _ in 0..100 {
        let (_, status) = gw.admin("/status").await;
        if status.contains("\"healthy\": false") {
            ejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ejected, "health checks of the reloaded pool run");

    // A broken config is refused; the running one stays.
    std::fs::write(&conf, format!("{head}[[site]]\nname = 1\n")).expect("write");
    gw.signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gw.get("new.test", "/id").await.text().await.expect("b"),
        "b"
    );
    assert!(gw.logs().contains("reload refused"), "{}", gw.logs());
    assert_eq!(
        gw.metric("imgforge_config_reload_failures_total", &[])
            .await,
        1.0
    );
}
