//! imgproxy routes at the edge: URLs are parsed and signatures verified before any origin is
//! touched; errors carry imgproxy's statuses.

use crate::common::*;

/// imgproxy's documented signing vector: key "secret", salt "hello".
const SIGNED: &str = "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";

fn routes() -> &'static str {
    r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574"]
salt = ["68656C6C6F"]
allowed_sources = ["http://example.com/", "http://127.0.0.1:*/"]
presets = { thumb = "rs:fill:200:200/q:75" }

[[site.route]]
prefix = "/open/"
kind = "imgproxy"
allow_unsigned = true

[[site.route]]
prefix = "/"
kind = "proxy"
"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_url_errors() {
    let origin = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&format!(
            "{}{}",
            site("s", &["s.test"], &[origin.addr], ""),
            routes()
        ))
        .start()
        .await;
    let body = |r: reqwest::Response| async move { r.text().await.expect("body") };

    // imgproxy's documented vector verifies; its source (example.com) cannot be resolved here.
    let r = gw.get("s.test", &format!("/img{SIGNED}")).await;
    let status = r.status();
    assert!(
        status == 502 || status == 504,
        "{status}: {}",
        body(r).await
    );

    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/img{}", SIGNED.replace("oKfU", "xKfU")),
            403,
            "Forbidden",
        ),
        (
            "/img/unsafe/rs:fit:10:10/plain/http://example.com/a.jpg".into(),
            403,
            "Forbidden",
        ),
        (
            "/img/_/rs:fit:10:10/plain/http://example.com/a.jpg".into(),
            403,
            "Forbidden",
        ),
        (
            "/open/unsafe/nope:1/plain/a.jpg".into(),
            404,
            "Unknown processing option nope",
        ),
        ("/open/unsafe/rs:fit:abc/plain/a.jpg".into(), 404, "abc"),
        (
            "/open/unsafe/exp:1000/plain/a.jpg".into(),
            404,
            "Expired URL",
        ),
        (
            "/open/unsafe/pr:missing/plain/a.jpg".into(),
            404,
            "Unknown preset: missing",
        ),
        ("/open/unsafe/rot:45/plain/a.jpg".into(), 404, "90"),
        (
            "/open/unsafe/w:10/plain/a.jpg@png@jpg".into(),
            404,
            "Multiple formats",
        ),
        (
            "/open/unsafe/fill/300/400/sm/0/plain/a.jpg".into(),
            404,
            "deprecated basic URL format",
        ),
        (
            "/open/unsafe/w:10/plain/ftp://x/a.jpg".into(),
            404,
            "Unsupported source scheme",
        ),
        (
            "/open/unsafe/msr:1/plain/a.jpg".into(),
            403,
            "Security processing options are not allowed",
        ),
    ];
    for (path, status, text) in &cases {
        let r = gw.get("s.test", path).await;
        let got = r.status().as_u16();
        let b = body(r).await;
        assert_eq!(got, *status, "{path}: {b}");
        assert!(b.contains(text), "{path}: {b:?} lacks {text:?}");
    }
    // Presets and allowed sources on the signed route, with URLs signed like a client library would.
    let pairs = imgforge::imgproxy::hex_key_pairs(&["736563726574".into()], &["68656C6C6F".into()])
        .expect("pairs");
    let signed = |path: &str| {
        format!(
            "/img/{}{path}",
            imgforge::imgproxy::sign_path(&pairs[0], path, 32)
        )
    };
    // An allowed absolute source on loopback is still refused by the SSRF guard: 404, as
    // imgproxy answers it.
    let r = gw
        .get(
            "s.test",
            &signed(&format!("/pr:thumb/plain/http://{}/id", origin.addr)),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(body(r).await.contains("loopback"));
    let r = gw
        .get("s.test", &signed("/w:10/plain/http://evil.test/a.jpg"))
        .await;
    assert_eq!(r.status(), 404);
    assert!(body(r).await.contains("not allowed"));
    assert_eq!(
        origin.hits(),
        0,
        "no origin request for any refused image URL"
    );
    assert!(
        gw.logs().contains("Unknown processing option nope"),
        "refusals are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_fetched_with_limits() {
    let origin = Origin::start("o").await;
    let gw = Gateway::builder()
        .config(&format!(
            "{}{}",
            site("s", &["s.test"], &[origin.addr], ""),
            routes()
        ))
        .config("[transform]\nmax_src_file_size = \"4KiB\"\ntimeout = \"1s\"\n")
        .start()
        .await;
    let get = |p: &'static str| gw.get("s.test", p);

    // `raw` passes the source through unchanged, with the image service's headers.
    let r = get("/open/unsafe/raw:1/plain/blob/3000").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "3000");
    assert!(r.headers().contains_key("etag"));
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        pattern(3000).as_slice()
    );
    assert_eq!(origin.hits(), 1);

    let cases: [(&str, u16, &str); 5] = [
        (
            "/open/unsafe/raw:1/plain/nothing-here.jpg",
            404,
            "source not found",
        ),
        (
            "/open/unsafe/raw:1/plain/blob/5000",
            422,
            "larger than 4096 bytes",
        ),
        (
            "/open/unsafe/raw:1/plain/status/500",
            502,
            "origin answered 500",
        ),
        ("/open/unsafe/raw:1/plain/slow/3000", 504, "timed out"),
        (
            "/open/unsafe/rs:fit:10:10/plain/blob/100",
            415,
            "not an image",
        ),
    ];
    for (path, status, text) in cases {
        let r = get(path).await;
        assert_eq!(r.status(), status, "{path}");
        let b = r.text().await.expect("body");
        assert!(b.contains(text), "{path}: {b:?}");
    }
    // The signature is checked by the edge before the image service is involved.
    assert_eq!(get("/img/unsafe/raw:1/plain/blob/10").await.status(), 403);
    // A client cannot smuggle the internal routing headers.
    let r = gw
        .request(reqwest::Method::GET, "s.test", "/id")
        .header("X-Imgforge-Site", "s")
        .header("X-Imgforge-Route", "/open/")
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("b"), "o");
}
