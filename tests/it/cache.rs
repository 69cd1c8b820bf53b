//! The response cache: variants and opted-in proxy responses, counted at the origin and in
//! metrics; persistence on disk; coalescing; freshness, revalidation and stale-if-error.

use crate::common::*;

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;

use crate::common::IMAGE_ROUTES_CACHED_ROOT as IMG_ROUTES;

/// A gateway with the image routes above in front of `origin`.
async fn img_gateway(origin: &Origin) -> Gateway {
    Gateway::builder()
        .config(&format!(
            "{}{IMG_ROUTES}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await
}

fn quad_jpeg() -> Vec<u8> {
    testkit::encode(&testkit::quadrant_pixels(120, 80), 120, 80, 3, Format::Jpeg).to_vec()
}

async fn get(
    gw: &Gateway,
    path: &str,
) -> (
    u16,
    Option<String>,
    reqwest::header::HeaderMap,
    bytes::Bytes,
) {
    let r = gw.get("s.test", path).await;
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = r.headers().clone();
    (status, cache, headers, r.bytes().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_are_cached_and_hits_have_content_length() {
    let origin = Origin::start("o").await;
    origin.put("q.jpg", quad_jpeg());
    let gw = img_gateway(&origin).await;
    let path = "/img/unsafe/rs:fill:40:40/plain/f/q.jpg@webp";
    let (s1, c1, h1, b1) = get(&gw, path).await;
    assert_eq!((s1, c1.as_deref()), (200, Some("MISS")));
    let (s2, c2, h2, b2) = get(&gw, path).await;
    assert_eq!((s2, c2.as_deref()), (200, Some("HIT")));
    assert_eq!(b1, b2);
    assert_eq!(h2["content-length"], b2.len().to_string().as_str());
    assert_eq!(h1["etag"], h2["etag"]);
    assert_eq!(origin.hits(), 1, "the source was fetched once");
    // Alias spelling and option order do not make a new variant; another format does.
    let (_, c3, _, _) = get(&gw, "/img/unsafe/resize:fill:40:40/plain/f/q.jpg@webp").await;
    assert_eq!(c3.as_deref(), Some("HIT"));
    let (_, c4, _, _) = get(&gw, "/img/unsafe/rs:fill:40:40/plain/f/q.jpg@png").await;
    assert_eq!(c4.as_deref(), Some("MISS"));
    // Errors are never cached.
    for _ in 0..2 {
        let (s, c, _, _) = get(&gw, "/img/unsafe/w:10/plain/f/missing.jpg").await;
        assert_eq!((s, c.as_deref()), (404, Some("MISS")));
    }
    // The PNG variant was made from the cached original; only the 404s reached the origin.
    assert_eq!(origin.hits(), 1 + 2);
    let hits = gw
        .metric(
            "imgforge_cache_requests_total",
            &[("site", "s"), ("status", "HIT")],
        )
        .await;
    assert_eq!(hits, 2.0);
    // A conditional request on a hit is answered 304 from the cache.
    let etag = h2["etag"].to_str().expect("etag").to_string();
    let r = gw
        .request(reqwest::Method::GET, "s.test", path)
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 304);
    assert_eq!(origin.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_variants_of_one_source_fetch_it_once() {
    let origin = Origin::start("o").await;
    origin.put("q.jpg", quad_jpeg());
    let gw = img_gateway(&origin).await;
    let paths = (20..30).map(|w| format!("/img/unsafe/w:{w}/plain/f/q.jpg"));
    for r in gw.concurrently("s.test", paths).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(origin.hits(), 1, "ten variants at once, one download");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_are_coalesced() {
    let origin = Origin::start("o").await;
    origin.put("q.jpg", quad_jpeg());
    let gw = img_gateway(&origin).await;
    let paths = (0..10).map(|_| "/img/unsafe/w:60/plain/f/q.jpg@avif".to_string());
    let responses = gw.concurrently("s.test", paths).await;
    let mut bodies = Vec::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        bodies.push(r.bytes().await.expect("body"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        origin.hits(),
        1,
        "ten concurrent misses, one source fetch and one transform"
    );
    // The others waited on the cache lock for the one filling it, and were served what it
    // stored: every wait ended `done`.
    let labels = [("site", "s"), ("route", "/img")];
    // A wait's outcome is counted before its response goes out; the per-route families when
    // the request is logged, after it: wait for them to catch up.
    let done = gw
        .metric(
            "imgforge_cache_lock_wait_outcomes_total",
            &[("outcome", "done")],
        )
        .await;
    let waits = gw
        .metric_settled("imgforge_cache_lock_waits_total", &labels, done)
        .await;
    assert!(waits > 0.0, "no request waited on the cache lock");
    assert!(waits <= 9.0, "{waits}: the writer never waits");
    assert_eq!(
        gw.metric_settled("imgforge_cache_lock_wait_seconds_count", &labels, waits)
            .await,
        waits
    );
    assert!(
        gw.metric("imgforge_cache_lock_wait_seconds_sum", &labels)
            .await
            > 0.0
    );
    assert_eq!(
        gw.metric(
            "imgforge_cache_lock_wait_outcomes_total",
            &[("outcome", "done")]
        )
        .await,
        waits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_holding_the_lock_too_long_times_its_readers_out() {
    let origin = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/\"\ncache = true\ncache_ttl = \"1m\"\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}[cache]\nlock_timeout = \"300ms\"\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    // The first request fills for 1.5 s; the readers stop waiting after 300 ms and compete
    // again (pingora's age timeout), so coalescing fails and the origin sees them.
    let paths = (0..3).map(|_| "/slow/1500".to_string());
    for r in gw.concurrently("s.test", paths).await {
        assert_eq!(r.status(), 200);
    }
    let timeouts = gw
        .metric(
            "imgforge_cache_lock_wait_outcomes_total",
            &[("outcome", "age_timeout")],
        )
        .await;
    assert!(timeouts >= 1.0, "{timeouts}");
    assert!(
        origin.hits() > 1,
        "the timed-out readers went to the origin"
    );
    assert!(
        gw.metric(
            "imgforge_cache_lock_waits_total",
            &[("site", "s"), ("route", "/")]
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_cache_survives_a_restart() {
    let origin = Origin::start("o").await;
    origin.put("q.jpg", quad_jpeg());
    let disk = tempfile::tempdir().expect("tempdir");
    let cache = format!(
        "[cache]\nmemory_size = \"8MiB\"\ndisk_path = \"{}\"\ndisk_size = \"64MiB\"\n",
        disk.path().display()
    );
    let config = format!(
        "{}{IMG_ROUTES}{cache}",
        site("s", &["s.test"], &[origin.addr], "")
    );
    let path = "/img/unsafe/w:50/plain/f/q.jpg@png";
    let first = {
        let gw = Gateway::builder().config(&config).start().await;
        let (s, c, _, b) = get(&gw, path).await;
        assert_eq!((s, c.as_deref()), (200, Some("MISS")));
        // Give the disk tier a moment to finish its write behind the response.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        b
    };
    let gw = Gateway::builder().config(&config).start().await;
    let (s, c, _, b) = get(&gw, path).await;
    assert_eq!(
        (s, c.as_deref()),
        (200, Some("HIT")),
        "served from disk after a restart"
    );
    assert_eq!(b, first);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_routes_follow_http_caching_rules() {
    let origin = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/\"\ncache = true\ncache_ttl = \"1m\"\nstale_if_error = \"1m\"\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    // max-age=60: cached.
    assert_eq!(get(&gw, "/cc/60/a").await.1.as_deref(), Some("MISS"));
    assert_eq!(get(&gw, "/cc/60/a").await.1.as_deref(), Some("HIT"));
    // no-store: never.
    assert_eq!(get(&gw, "/cc/none/b").await.1.as_deref(), Some("MISS"));
    assert_eq!(get(&gw, "/cc/none/b").await.1.as_deref(), Some("MISS"));
    assert_eq!(origin.hits(), 3);
    // max-age=1: expires, then revalidates with If-None-Match (origin answers 304).
    assert_eq!(get(&gw, "/cc/1/c").await.1.as_deref(), Some("MISS"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, c, _, body) = get(&gw, "/cc/1/c").await;
    assert_eq!((s, c.as_deref()), (200, Some("REVALIDATED")));
    assert!(String::from_utf8_lossy(&body).starts_with("o #"));
    assert_eq!(
        origin
            .state
            .last_headers
            .lock()
            .expect("lock")
            .get("if-none-match")
            .map(String::as_str),
        Some("\"c\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_serves_the_old_copy_while_the_origin_is_down() {
    let mut origin = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/\"\ncache = true\nstale_if_error = \"1m\"\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let (_, c, _, fresh) = get(&gw, "/cc/1/d").await;
    assert_eq!(c.as_deref(), Some("MISS"));
    origin.stop();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, c, _, stale) = get(&gw, "/cc/1/d").await;
    assert_eq!((s, c.as_deref()), (200, Some("STALE")));
    assert_eq!(stale, fresh);
    // Without a cached copy the failure shows.
    assert_eq!(get(&gw, "/cc/1/e").await.0, 502);
}

async fn purge(gw: &Gateway, query: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut req = client.post(format!("http://127.0.0.1:{}/purge?{query}", gw.admin_port));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("purge");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_one_url_one_source_or_everything() {
    let origin = Origin::start("o").await;
    origin.put("q.jpg", quad_jpeg());
    let gw = Gateway::builder()
        .server("admin_token = \"s3cret\"")
        .config(&format!(
            "{}{IMG_ROUTES}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let a = "/img/unsafe/w:30/plain/f/q.jpg";
    let b = "/img/unsafe/w:31/plain/f/q.jpg";
    for p in [a, b] {
        assert_eq!(get(&gw, p).await.1.as_deref(), Some("MISS"));
        assert_eq!(get(&gw, p).await.1.as_deref(), Some("HIT"));
    }
    // The token is required.
    assert_eq!(purge(&gw, "all=1", None).await.0, 401);
    assert_eq!(purge(&gw, "all=1", Some("wrong")).await.0, 401);

    // One URL (as clients request it): only that variant goes.
    let (s, body) = purge(
        &gw,
        &format!("url={}", enc(&format!("http://s.test{a}"))),
        Some("s3cret"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"entries\":1"), "{body}");
    assert_eq!(get(&gw, a).await.1.as_deref(), Some("MISS"));
    assert_eq!(get(&gw, b).await.1.as_deref(), Some("HIT"));

    // Every variant of the source, and the cached original with them.
    let before = origin.hits();
    let (s, body) = purge(&gw, "site=s&source=/f/q.jpg", Some("s3cret")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(get(&gw, a).await.1.as_deref(), Some("MISS"));
    assert_eq!(get(&gw, b).await.1.as_deref(), Some("MISS"));
    assert_eq!(
        origin.hits(),
        before + 1,
        "the original was fetched again, once"
    );

    // Everything.
    assert_eq!(purge(&gw, "all=1", Some("s3cret")).await.0, 200);
    assert_eq!(get(&gw, b).await.1.as_deref(), Some("MISS"));
    assert_eq!(purge(&gw, "nothing=1", Some("s3cret")).await.0, 400);
}
