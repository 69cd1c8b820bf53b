//! The admin listener: health, readiness, status and metrics.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics() {
    let o = Origin::start("o").await;
    let root = tree(&[("a.txt", b"a")]);
    let gw = Gateway::builder()
        .config(&site("shop", &["shop.test"], &[o.addr], ""))
        .config(&root_site("files", &["files.test"], root.path()))
        .start()
        .await;

    assert_eq!(
        gw.admin("/health").await,
        (200, "imgforge is running\n".into())
    );
    assert_eq!(gw.admin("/readyz").await.0, 200);
    assert_eq!(gw.admin("/nope").await.0, 404);

    for _ in 0..3 {
        assert_eq!(gw.get("shop.test", "/id").await.status(), 200);
    }
    assert_eq!(gw.get("shop.test", "/missing").await.status(), 404);
    assert_eq!(gw.get("files.test", "/a.txt").await.status(), 200);
    assert_eq!(gw.get("nobody.test", "/").await.status(), 421);

    let (code, status) = gw.admin("/status").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_seconds"].as_f64().expect("uptime") > 0.0);
    assert_eq!(v["ready"], true);
    assert_eq!(v["sites"][0]["name"], "shop");
    assert_eq!(v["sites"][0]["origin"]["servers"][0]["healthy"], true);
    assert_eq!(
        v["sites"][1]["origin"]["root"],
        root.path().display().to_string()
    );

    let ok =
        |site: &str, status: &str| vec![("site", site.to_string()), ("status", status.to_string())];
    let m = |labels: Vec<(&'static str, String)>| {
        let gw = &gw;
        async move {
            let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            gw.metric("imgforge_requests_total", &l).await
        }
    };
    assert_eq!(m(ok("shop", "200")).await, 3.0);
    assert_eq!(m(ok("shop", "404")).await, 1.0);
    assert_eq!(m(ok("files", "200")).await, 1.0);
    assert_eq!(m(ok("-", "421")).await, 1.0);
    assert_eq!(
        gw.metric(
            "imgforge_request_duration_seconds_count",
            &[("site", "shop")]
        )
        .await,
        4.0
    );
    assert_eq!(gw.metric("imgforge_requests_in_flight", &[]).await, 0.0);
    assert_eq!(
        gw.metric("imgforge_upstream_healthy", &[("site", "shop")])
            .await,
        1.0
    );
}
