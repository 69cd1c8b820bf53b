//! The imgproxy-compatible families on `/metrics`, through the real gateway: image requests
//! (and only those) are counted with imgproxy's names, types, labels and meanings; the
//! namespace prefixes them.

use crate::common::*;

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;

use crate::common::IMAGE_ROUTES as ROUTES;

/// `n` different PNG sources `a0.png`, `a1.png`, … (different sizes, so different bytes).
fn put_sources(origin: &Origin, n: u32) {
    for i in 0..n {
        let (w, h) = (40 + i, 30 + i);
        let png = testkit::encode(&testkit::quadrant_pixels(w, h), w, h, 3, Format::Png);
        origin.put(&format!("a{i}.png"), png.to_vec());
    }
}

async fn status(gw: &Gateway, path: &str) -> u16 {
    let r = gw.get("s.test", path).await;
    let s = r.status().as_u16();
    // Read the whole body: the request is only finished (and counted) once it is sent.
    r.bytes().await.expect("body");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_requests_are_counted_like_imgproxy() {
    const N: u32 = 3;
    let origin = Origin::start("o").await;
    put_sources(&origin, N);
    let gw = Gateway::builder()
        .config(&format!(
            "{}{ROUTES}[transform]\nworkers = 3\nqueue = 5\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;

    // N transforms of N sources: N downloads, N queue waits, N libvips jobs.
    for i in 0..N {
        let path = format!("/img/unsafe/rs:fit:20:20/plain/f/a{i}.png@webp");
        assert_eq!(status(&gw, &path).await, 200, "{path}");
    }
    // A cache hit: a request with a status, but no download or processing.
    assert_eq!(
        status(&gw, "/img/unsafe/rs:fit:20:20/plain/f/a0.png@webp").await,
        200
    );
    // Refused at the edge (unknown option), and a source missing at the origin.
    assert_eq!(status(&gw, "/img/unsafe/nope:1/plain/f/a0.png").await, 404);
    assert_eq!(status(&gw, "/img/unsafe/w:10/plain/f/gone.png").await, 404);
    // The origin fails (503): a download error, and an upstream error of the site and route.
    assert_eq!(status(&gw, "/img/unsafe/w:10/plain/status/503").await, 502);
    // Proxy routes are not image requests.
    assert_eq!(status(&gw, "/id").await, 200);

    let total = f64::from(N) + 4.0;
    assert_eq!(gw.metric_settled("requests_total", &[], total).await, total);
    assert_eq!(
        gw.metric("request_duration_seconds_count", &[]).await,
        total
    );
    assert_eq!(
        gw.metric("status_codes_total", &[("status", "200")]).await,
        f64::from(N) + 1.0
    );
    assert_eq!(
        gw.metric("status_codes_total", &[("status", "404")]).await,
        2.0
    );
    assert_eq!(
        gw.metric("errors_total", &[("type", "path_parsing")]).await,
        1.0
    );
    assert_eq!(
        gw.metric("status_codes_total", &[("status", "502")]).await,
        1.0
    );
    assert_eq!(
        gw.metric("errors_total", &[("type", "download")]).await,
        2.0
    );
    assert_eq!(gw.metric("errors_total", &[]).await, 3.0);
    assert_eq!(
        gw.metric(
            "imgforge_upstream_errors_total",
            &[("site", "s"), ("route", "/img"), ("kind", "bad_status")]
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric("imgforge_upstream_errors_total", &[]).await,
        1.0,
        "a missing source (404) is not an origin failure"
    );

    let span = |s: &'static str| {
        let gw = &gw;
        async move {
            gw.metric("request_span_duration_seconds_count", &[("span", s)])
                .await
        }
    };
    // Failed downloads are downloads too.
    assert_eq!(span("downloading").await, f64::from(N) + 2.0);
    assert_eq!(span("queue").await, f64::from(N));
    assert_eq!(span("processing").await, f64::from(N));
    assert_eq!(
        gw.metric("download_duration_seconds_count", &[]).await,
        f64::from(N) + 2.0
    );
    assert_eq!(
        gw.metric("processing_duration_seconds_count", &[]).await,
        f64::from(N)
    );
    assert!(
        gw.metric(
            "request_span_duration_seconds_sum",
            &[("span", "processing")]
        )
        .await
            > 0.0
    );

    assert_eq!(gw.metric("workers", &[]).await, 3.0);
    assert_eq!(
        gw.metric("imgforge_transform_queue_capacity", &[]).await,
        5.0
    );
    // Nothing in flight any more.
    for idle in [
        "requests_in_progress",
        "images_in_progress",
        "workers_utilization",
        "imgforge_transform_queue_jobs",
    ] {
        assert_eq!(gw.metric(idle, &[]).await, 0.0, "{idle}");
    }
    assert!(gw.metric("vips_max_memory_bytes", &[]).await > 0.0);
    let names = gw.metric_names().await;
    for gauge in ["vips_memory_bytes", "vips_allocs"] {
        assert!(names.contains(gauge), "{gauge} missing from {names:?}");
    }
    // imgforge's own families are unchanged.
    assert_eq!(
        gw.metric(
            "imgforge_requests_total",
            &[("site", "s"), ("route", "/img"), ("status", "200")]
        )
        .await,
        f64::from(N) + 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_progress_gauges_while_a_transform_waits() {
    let origin = Origin::start("o").await;
    put_sources(&origin, 1);
    // A slow source keeps one image request in progress; the scrape sees it.
    let gw = Gateway::builder()
        .config(&format!(
            "{}{ROUTES}[transform]\nworkers = 2\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let slow = tokio::spawn({
        let req = gw.request(
            reqwest::Method::GET,
            "s.test",
            "/img/unsafe/w:10/plain/slow/800",
        );
        async move { req.send().await.expect("send").status().as_u16() }
    });
    let mut seen = 0.0;
    for _ in 0..40 {
        seen = gw.metric("requests_in_progress", &[]).await;
        if seen == 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 1.0, "one image request in progress");
    // imgproxy's definition: requests_in_progress / workers * 100.
    assert_eq!(gw.metric("workers_utilization", &[]).await, 50.0);
    // "slept 800" is not an image.
    assert_eq!(slow.await.expect("join"), 415);
    assert_eq!(
        gw.metric_settled("requests_in_progress", &[], 0.0).await,
        0.0
    );
    assert_eq!(
        gw.metric("errors_total", &[("type", "processing")]).await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_prefixes_the_imgproxy_families() {
    let origin = Origin::start("o").await;
    put_sources(&origin, 1);
    let gw = Gateway::builder()
        .config(&format!(
            "{}{ROUTES}[transform]\nworkers = 2\n[metrics]\nnamespace = \"imgproxy\"\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    assert_eq!(status(&gw, "/img/unsafe/w:10/plain/f/a0.png").await, 200);
    assert_eq!(
        gw.metric_settled("imgproxy_requests_total", &[], 1.0).await,
        1.0
    );
    assert_eq!(gw.metric("imgproxy_workers", &[]).await, 2.0);
    assert_eq!(
        gw.metric(
            "imgproxy_request_span_duration_seconds_count",
            &[("span", "processing")]
        )
        .await,
        1.0
    );
    let names = gw.metric_names().await;
    let unprefixed: Vec<&String> = names
        .iter()
        .filter(|n| {
            [
                "requests_total",
                "workers",
                "vips_memory_bytes",
                "request_duration_seconds_count",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert!(unprefixed.is_empty(), "{unprefixed:?}");
    // imgforge's own families are never prefixed.
    assert_eq!(
        gw.metric("imgforge_requests_total", &[("site", "s")]).await,
        1.0
    );
}
