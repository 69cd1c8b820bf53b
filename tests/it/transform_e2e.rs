//! Image routes end to end: a real origin serves generated images, the gateway transforms them
//! with libvips, and the tests decode what comes back.

use crate::common::*;

use imgforge::imgproxy::Format;
use imgforge::transform::testkit::{self, decode, pixel};

const RED: [f64; 3] = [255.0, 0.0, 0.0];
const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
const YELLOW: [f64; 3] = [255.0, 255.0, 0.0];

#[track_caller]
fn assert_rgb(got: &[f64], want: [f64; 3]) {
    let ok = got.len() >= 3 && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 40.0);
    assert!(ok, "pixel {got:?} is not {want:?}");
}

const ROUTES: &str = r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
auto_webp = true
[[site.route]]
prefix = "/"
"#;

async fn gateway(origin: &Origin) -> Gateway {
    Gateway::builder()
        .config(&format!(
            "{}{ROUTES}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

async fn get(gw: &Gateway, path: &str) -> Got {
    let r = gw.get("s.test", path).await;
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().await.expect("body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geometry_formats_and_pixels() {
    let origin = Origin::start("o").await;
    let quad = testkit::encode(
        &testkit::quadrant_pixels(200, 100),
        200,
        100,
        3,
        Format::Png,
    );
    origin.put("quad.png", quad.to_vec());
    let gw = gateway(&origin).await;

    // (options, expected format, width, height)
    let cases: [(&str, Format, u32, u32); 9] = [
        ("rs:fit:100:100", Format::Png, 100, 50),
        ("w:50", Format::Png, 50, 25),
        ("rs:force:30:70", Format::Png, 30, 70),
        ("rs:fill:50:50", Format::Png, 50, 50),
        ("rs:fit:400:400", Format::Png, 200, 100),
        ("rs:fit:400:400:1", Format::Png, 400, 200),
        ("rot:90", Format::Png, 100, 200),
        ("pd:10", Format::Png, 220, 120),
        ("c:100:50:nowe", Format::Png, 100, 50),
    ];
    for (opts, format, w, h) in cases {
        let g = get(&gw, &format!("/img/unsafe/{opts}/plain/f/quad.png")).await;
        assert_eq!(
            g.status,
            200,
            "{opts}: {:?}",
            String::from_utf8_lossy(&g.body)
        );
        let d = decode(&g.body);
        assert_eq!((d.format, d.width, d.height), (format, w, h), "{opts}");
        assert_eq!(g.headers["content-type"], format.mime(), "{opts}");
        assert_eq!(
            g.headers["content-length"],
            g.body.len().to_string().as_str()
        );
    }

    // Gravity keeps the right quadrant's colour.
    for (gravity, colour) in [
        ("nowe", RED),
        ("noea", GREEN),
        ("sowe", BLUE),
        ("soea", YELLOW),
    ] {
        let g = get(
            &gw,
            &format!("/img/unsafe/rs:fill:40:40/g:{gravity}/plain/f/quad.png"),
        )
        .await;
        // A 2:1 source filled into a square is cropped sideways: west/east picks the half,
        // and each half still has its top and bottom colours.
        let y = if gravity.starts_with("no") { 8 } else { 32 };
        assert_rgb(&pixel(&g.body, 20, y), colour);
    }
    let g = get(&gw, "/img/unsafe/c:100:50:nowe/plain/f/quad.png").await;
    assert_rgb(&pixel(&g.body, 90, 40), RED);
    // Flip mirrors: top-left becomes green.
    let g = get(&gw, "/img/unsafe/fl:1:0/plain/f/quad.png").await;
    assert_rgb(&pixel(&g.body, 10, 10), GREEN);
    // Rotate by 90° clockwise: the top-left corner is now blue.
    let g = get(&gw, "/img/unsafe/rot:90/plain/f/quad.png").await;
    assert_rgb(&pixel(&g.body, 10, 10), BLUE);

    // Explicit formats, by extension and by option.
    for (suffix, format) in [
        ("@webp", Format::Webp),
        ("@jpg", Format::Jpeg),
        ("@gif", Format::Gif),
        ("@avif", Format::Avif),
    ] {
        let g = get(&gw, &format!("/img/unsafe/w:64/plain/f/quad.png{suffix}")).await;
        assert_eq!(g.status, 200, "{suffix}");
        assert_eq!(decode(&g.body).format, format, "{suffix}");
        if format == Format::Avif {
            assert_eq!(&g.body[8..12], b"avif", "AV1 (avif brand), never HEVC");
        }
    }
    let g = get(&gw, "/img/unsafe/w:64/f:webp/plain/f/quad.png").await;
    assert_eq!(decode(&g.body).format, Format::Webp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_background_animation_and_orientation() {
    let origin = Origin::start("o").await;
    let mut half = Vec::new();
    for _ in 0..40 {
        for x in 0..40 {
            half.extend_from_slice(&if x < 20 {
                [0, 0, 0, 0]
            } else {
                [255, 0, 0, 255]
            });
        }
    }
    origin.put(
        "alpha.png",
        testkit::encode(&half, 40, 40, 4, Format::Png).to_vec(),
    );
    origin.put(
        "anim.gif",
        testkit::animation(30, 20, 3, Format::Gif).to_vec(),
    );
    let quad = testkit::encode(&testkit::quadrant_pixels(60, 40), 60, 40, 3, Format::Jpeg);
    origin.put("rot6.jpg", testkit::with_orientation(&quad, 6).to_vec());
    let gw = gateway(&origin).await;

    // Accept decides between WebP and the source format, and says so in Vary.
    let r = gw
        .request(
            reqwest::Method::GET,
            "s.test",
            "/img/unsafe/w:20/plain/f/alpha.png",
        )
        .header("Accept", "image/webp,*/*")
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["vary"], "Accept");
    assert_eq!(decode(&r.bytes().await.expect("body")).format, Format::Webp);
    let g = get(&gw, "/img/unsafe/w:20/plain/f/alpha.png").await;
    let d = decode(&g.body);
    assert_eq!((d.format, d.bands), (Format::Png, 4), "alpha kept in PNG");

    // Background fills transparency with the right colour (JPEG has no alpha).
    let g = get(&gw, "/img/unsafe/bg:0:0:255/plain/f/alpha.png@jpg").await;
    assert_eq!(decode(&g.body).bands, 3);
    assert_rgb(&pixel(&g.body, 5, 20), BLUE);
    assert_rgb(&pixel(&g.body, 35, 20), RED);

    // Animated GIF stays animated; a still format keeps one frame.
    let g = get(&gw, "/img/unsafe/w:15/plain/f/anim.gif").await;
    let d = decode(&g.body);
    assert_eq!(
        (d.format, d.width, d.height, d.pages),
        (Format::Gif, 15, 10, 3)
    );
    let g = get(&gw, "/img/unsafe/w:15/plain/f/anim.gif@png").await;
    assert_eq!(decode(&g.body).pages, 1);

    // EXIF orientation 6 is applied: 60×40 stored, 40×60 shown.
    let g = get(&gw, "/img/unsafe/plain/f/rot6.jpg@png").await;
    let d = decode(&g.body);
    assert_eq!((d.width, d.height), (40, 60));
    let g = get(&gw, "/img/unsafe/ar:0/plain/f/rot6.jpg@png").await;
    assert_eq!((decode(&g.body).width, decode(&g.body).height), (60, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_info_conditional_and_errors() {
    let origin = Origin::start("o").await;
    let quad = testkit::encode(&testkit::quadrant_pixels(80, 40), 80, 40, 3, Format::Jpeg);
    origin.put("q.jpg", quad.to_vec());
    origin.put("text.jpg", b"<html>not an image</html>".to_vec());
    let mut corrupt = quad.to_vec();
    corrupt.truncate(200);
    origin.put("corrupt.jpg", corrupt);
    origin.put(
        "bomb.png",
        testkit::png_header_only(20_000, 20_000).to_vec(),
    );
    let gw = gateway(&origin).await;

    let g = get(&gw, "/img/unsafe/w:40/att:1/plain/f/q.jpg@webp").await;
    assert_eq!(
        g.headers["content-disposition"],
        "attachment; filename=\"q.webp\""
    );
    let g = get(&gw, "/img/unsafe/w:40/fn:holiday/plain/f/q.jpg").await;
    assert_eq!(
        g.headers["content-disposition"],
        "inline; filename=\"holiday.jpg\""
    );
    assert!(
        g.headers["cache-control"]
            .to_str()
            .expect("cc")
            .contains("max-age=")
    );

    // The ETag follows the source validator and the options; If-None-Match gives 304.
    let etag = g.headers["etag"].to_str().expect("etag").to_string();
    let r = gw
        .request(
            reqwest::Method::GET,
            "s.test",
            "/img/unsafe/w:40/fn:holiday/plain/f/q.jpg",
        )
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 304);
    let other = get(&gw, "/img/unsafe/w:41/fn:holiday/plain/f/q.jpg").await;
    assert_ne!(other.headers["etag"], etag.as_str());

    let g = get(&gw, "/img/info/unsafe/plain/f/q.jpg").await;
    assert_eq!(g.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&g.body).expect("json");
    assert_eq!(
        (
            v["format"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("jpeg"), Some(80), Some(40))
    );
    assert_eq!(v["bytes"].as_u64(), Some(quad.len() as u64));

    let cases = [
        ("/img/unsafe/w:10/plain/f/text.jpg", 415),
        ("/img/unsafe/w:10/plain/f/corrupt.jpg", 422),
        ("/img/unsafe/w:10/plain/f/bomb.png", 422),
        ("/img/unsafe/w:10/plain/f/missing.jpg", 404),
    ];
    for (path, status) in cases {
        let g = get(&gw, path).await;
        assert_eq!(
            g.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&g.body)
        );
        assert_eq!(
            g.headers["content-type"], "text/plain; charset=utf-8",
            "{path}"
        );
        assert!(g.body.len() < 200, "short body");
    }
    // The gateway is fine after all that.
    assert_eq!(get(&gw, "/img/unsafe/w:10/plain/f/q.jpg").await.status, 200);
}

/// 50 transforms at once while passthrough requests keep being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_stays_responsive_under_transform_load() {
    let origin = Origin::start("o").await;
    let w = 1200;
    let h = 800;
    let noise: Vec<u8> = (0..u64::from(w * h * 3))
        .map(|i| ((i * 7919) % 251) as u8)
        .collect();
    origin.put(
        "big.jpg",
        testkit::encode(&noise, w, h, 3, Format::Jpeg).to_vec(),
    );
    let gw = gateway(&origin).await;
    let mut transforms = Vec::new();
    for i in 0..50 {
        let req = gw
            .request(
                reqwest::Method::GET,
                "s.test",
                &format!("/img/unsafe/w:{}/plain/f/big.jpg@webp", 300 + i),
            )
            .send();
        transforms.push(tokio::spawn(req));
    }
    let mut pass_ok = 0;
    let started = std::time::Instant::now();
    while transforms.iter().any(|t| !t.is_finished())
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        let r = gw.get("s.test", "/id").await;
        assert_eq!(r.status(), 200);
        pass_ok += 1;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in transforms {
        let r = t.await.expect("join").expect("transform request");
        *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&50), "{statuses:?}");
    assert!(
        pass_ok >= 10,
        "passthrough answered only {pass_ok} times while transforms ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_modified_since_and_overload() {
    let root = tree(&[]);
    let w = 1600;
    let h = 1200;
    let noise: Vec<u8> = (0..u64::from(w * h * 3))
        .map(|i| ((i * 7919) % 251) as u8)
        .collect();
    std::fs::write(
        root.path().join("big.jpg"),
        testkit::encode(&noise, w, h, 3, Format::Jpeg),
    )
    .expect("write");
    let routes = "[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nallow_unsigned = true\ncache = false\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            root_site("l", &["l.test"], root.path())
        ))
        .config("[transform]\nworkers = 1\nqueue = 0\n")
        .start()
        .await;

    // Local sources carry Last-Modified; If-Modified-Since at or after it is a 304.
    let r = gw.get("l.test", "/img/unsafe/w:64/plain/big.jpg").await;
    assert_eq!(r.status(), 200);
    let lm = r.headers()["last-modified"]
        .to_str()
        .expect("lm")
        .to_string();
    let r = gw
        .request(
            reqwest::Method::GET,
            "l.test",
            "/img/unsafe/w:64/plain/big.jpg",
        )
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 304);
    let r = gw
        .request(
            reqwest::Method::GET,
            "l.test",
            "/img/unsafe/w:64/plain/big.jpg",
        )
        .header("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);

    // One worker and no queue: concurrent slow transforms beyond the first get 429 + Retry-After.
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(tokio::spawn(
            gw.request(
                reqwest::Method::GET,
                "l.test",
                &format!("/img/unsafe/w:{}/plain/big.jpg@avif", 1000 + i),
            )
            .send(),
        ));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.expect("join").expect("send");
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(r.headers()["retry-after"], "1");
                limited += 1;
            }
            s => panic!("unexpected {s}: {}", r.text().await.unwrap_or_default()),
        }
    }
    assert!(ok >= 1 && limited >= 1, "ok {ok}, limited {limited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_mime_types_refuse_other_source_types_by_their_bytes() {
    let origin = Origin::start("o").await;
    let quad = testkit::quadrant_pixels(40, 20);
    origin.put(
        "a.png",
        testkit::encode(&quad, 40, 20, 3, Format::Png).to_vec(),
    );
    // A JPEG behind a name (and so a Content-Type) that says PNG: the bytes decide.
    origin.put(
        "b.png",
        testkit::encode(&quad, 40, 20, 3, Format::Jpeg).to_vec(),
    );
    let gw = Gateway::builder()
        .config(&format!(
            "{}[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nallow_unsigned = true\nallowed_mime_types = [\"image/png\", \"image/webp\"]\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let ok = gw.get("s.test", "/img/unsafe/w:20/plain/f/a.png@png").await;
    assert_eq!(ok.status(), 200);
    let d = testkit::decode(&ok.bytes().await.expect("body"));
    assert_eq!((d.format, d.width), (Format::Png, 20));
    let refused = gw.get("s.test", "/img/unsafe/w:20/plain/f/b.png@png").await;
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.expect("body");
    assert!(
        body.contains("Source image type not allowed: image/jpeg"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_answers_carry_the_routes_content_security_policy() {
    let origin = Origin::start("o").await;
    let quad = testkit::quadrant_pixels(40, 20);
    origin.put(
        "a.png",
        testkit::encode(&quad, 40, 20, 3, Format::Png).to_vec(),
    );
    let gw = Gateway::builder()
        .config(&format!(
            "{}[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nallow_unsigned = true\ncache = true\n[[site.route]]\nprefix = \"/bare\"\nkind = \"imgproxy\"\nallow_unsigned = true\ncontent_security_policy = \"\"\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let csp = |r: &reqwest::Response| {
        r.headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap_or("").to_string())
    };
    let imgproxy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";
    for _ in 0..2 {
        // A miss, then a cache hit: the same header.
        let r = gw.get("s.test", "/img/unsafe/w:20/plain/f/a.png").await;
        assert_eq!(r.status(), 200);
        assert_eq!(csp(&r).as_deref(), Some(imgproxy));
    }
    let r = gw.get("s.test", "/img/unsafe/w:x/plain/f/a.png").await;
    assert_eq!(r.status(), 404);
    assert_eq!(csp(&r).as_deref(), Some(imgproxy), "errors carry it too");
    let r = gw.get("s.test", "/bare/unsafe/w:20/plain/f/a.png").await;
    assert_eq!(r.status(), 200);
    assert_eq!(csp(&r), None);
}
