//! The query API (`/img?url=&w=&h=&f=&q=&t=&sig=`) and the admin `/sign` endpoint, through the
//! real gateway against a real origin.

use crate::common::*;

use imgforge::imgproxy::{Format, KeyPair, query, sign_path};
use imgforge::transform::testkit::{self, decode};

const ROUTES: &str = r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574"]
salt = ["68656C6C6F"]
[[site.route]]
prefix = "/open"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/"
"#;

fn signed(query_without_sig: &str) -> String {
    let pair = KeyPair::new(b"secret", b"hello").expect("pair");
    query::signed_url("/img", query_without_sig, |t| sign_path(&pair, t, 32))
}

async fn get(gw: &Gateway, path: &str) -> (u16, Option<String>, bytes::Bytes) {
    let r = gw.get("s.test", path).await;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, r.bytes().await.expect("body"))
}

async fn sign(gw: &Gateway, query: &str, token: Option<&str>) -> (u16, String) {
    let mut req =
        reqwest::Client::new().get(format!("http://127.0.0.1:{}/sign?{query}", gw.admin_port));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("sign");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_requests_transform_like_paths() {
    let origin = Origin::start("o").await;
    let jpeg = testkit::encode(
        &testkit::quadrant_pixels(200, 100),
        200,
        100,
        3,
        Format::Jpeg,
    );
    origin.put("q.jpg", jpeg.to_vec());
    let gw = Gateway::builder()
        .server("admin_token = \"s3cret-token\"")
        .config(&format!(
            "{}{ROUTES}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;

    // Signed: every parameter reaches the pixels.
    let (s, ct, body) = get(&gw, &signed("url=f/q.jpg&w=50&h=50&t=fill&f=webp&q=70")).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct.as_deref(), Some("image/webp"));
    let d = decode(&body);
    assert_eq!((d.format, d.width, d.height), (Format::Webp, 50, 50));

    // Fit keeps the aspect ratio; no format keeps the source's.
    let (s, _, body) = get(&gw, &signed("url=f%2Fq.jpg&w=100")).await;
    assert_eq!(s, 200);
    let d = decode(&body);
    assert_eq!((d.format, d.width, d.height), (Format::Jpeg, 100, 50));

    // The same image as the equivalent path URL, byte for byte.
    let (_, _, via_path) = get(&gw, "/open/unsafe/rs:fit:100:0/plain/f/q.jpg").await;
    assert_eq!(body, via_path);

    // Refusals, before the origin is asked.
    let hits = origin.hits();
    let tampered = signed("url=f/q.jpg&w=100").replace("w=100", "w=101");
    let cases: Vec<(String, u16, &str)> = vec![
        // 403 bodies say only "Forbidden", as imgproxy's do.
        (tampered, 403, "Forbidden"),
        ("/img?url=f/q.jpg&w=100".into(), 403, "Forbidden"),
        ("/img?url=f/q.jpg&w=100&sig=%%%".into(), 403, "Forbidden"),
        (
            "/open?url=f/q.jpg&width=100".into(),
            404,
            "unknown query parameter",
        ),
        ("/open?url=f/q.jpg&w=1:bl:5".into(), 404, "bad query value"),
        ("/open?url=f/q.jpg&w=abc".into(), 404, "abc"),
        ("/open?url=f/q.jpg&f=bmp".into(), 422, "bmp"),
        ("/open?url=f/q.jpg&f=nope".into(), 404, "nope"),
        ("/open?url=f/q.jpg&w=1&w=2".into(), 404, "twice"),
    ];
    for (path, status, needle) in cases {
        let (s, _, body) = get(&gw, &path).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(s, status, "{path}: {text}");
        assert!(text.contains(needle), "{path}: {text}");
    }
    assert_eq!(origin.hits(), hits, "a refused query reached the origin");

    // Unsigned routes take queries without sig.
    let (s, _, body) = get(&gw, "/open?url=f/q.jpg&w=20&f=png").await;
    assert_eq!(s, 200);
    assert_eq!(decode(&body).format, Format::Png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_endpoint_hands_out_working_urls() {
    let origin = Origin::start("o").await;
    let jpeg = testkit::encode(&testkit::quadrant_pixels(64, 64), 64, 64, 3, Format::Jpeg);
    origin.put("q.jpg", jpeg.to_vec());
    let gw = Gateway::builder()
        .server("admin_token = \"s3cret-token\"")
        .config(&format!(
            "{}{ROUTES}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;

    assert_eq!(
        sign(&gw, "site=s&route=/img&url=f/q.jpg", None).await.0,
        401
    );
    assert_eq!(
        sign(&gw, "site=s&route=/img&url=f/q.jpg", Some("wrong"))
            .await
            .0,
        401
    );
    let token = Some("s3cret-token");

    // Query form: the URL it returns is served.
    let (s, url) = sign(&gw, "site=s&route=/img&url=f/q.jpg&w=32&f=webp", token).await;
    assert_eq!(s, 200, "{url}");
    assert!(
        url.starts_with("/img?url=f/q.jpg&w=32&f=webp&sig="),
        "{url}"
    );
    let (s, _, body) = get(&gw, url.trim()).await;
    assert_eq!(s, 200);
    assert_eq!(decode(&body).width, 32);

    // Path form.
    let (s, url) = sign(
        &gw,
        "site=s&route=/img&path=%2Frs%3Afill%3A16%3A16%2Fplain%2Ff%2Fq.jpg%40png",
        token,
    )
    .await;
    assert_eq!(s, 200, "{url}");
    let (s, _, body) = get(&gw, url.trim()).await;
    assert_eq!(s, 200, "{url}");
    let d = decode(&body);
    assert_eq!((d.format, d.width, d.height), (Format::Png, 16, 16));

    // URLs that would not be served are not signed.
    for (q, status) in [
        ("site=s&route=/img&url=f/q.jpg&w=abc", 400),
        ("site=s&route=/img&path=%2Fnope%3A1%2Fplain%2Fa.jpg", 400),
        ("site=s&route=/open&url=a.jpg", 400),
        ("site=s&route=/nope&url=a.jpg", 404),
        ("site=x&route=/img&url=a.jpg", 404),
        ("site=s&route=/img", 400),
    ] {
        let (s, body) = sign(&gw, q, token).await;
        assert_eq!(s, status, "{q}: {body}");
    }
}
