//! The playground (`GET /playground` on the admin listener) in a real browser: headless
//! Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, installed by
//! scripts/setup.sh), against the real binary with two sites on loopback.
//!
//! The driver is chromedriver spoken to with the HTTP client the tests already use (reqwest and
//! serde_json): the W3C WebDriver protocol is plain JSON over HTTP, so the browser test needs no
//! new crate, no Node toolchain and no download of a browser build.
//!
//! Each run leaves screenshots in `target/playground/` (wide and narrow).

use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "playground-admin-token-0123456789";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn demo_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/images")
}

/// Two sites: `demo` (the demo's images as a local root, a signed route with a preset) and
/// `shop` (an HTTP origin, an unsigned route).
async fn gateway(origin: &Origin) -> Gateway {
    Gateway::builder()
        .server(&format!("admin_token = \"{TOKEN}\""))
        .config(&root_site("demo", &["demo.test"], &demo_images()))
        .config(
            r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574", "6b65792d74776f"]
salt = ["68656C6C6F", "73616c742d74776f"]
presets = { thumb = "rs:fill:120:120" }
[[site.route]]
prefix = "/"
"#,
        )
        .config(&site("shop", &["shop.test"], &[origin.addr], ""))
        .config(IMAGE_ROUTES)
        .start()
        .await
}

fn admin_url(gw: &Gateway, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", gw.admin_port)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The token, the session cookie and the JSON endpoints, over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_sessions_and_endpoints() {
    let origin = Origin::start("shop").await;
    let gw = gateway(&origin).await;
    let http = client();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = http.get(admin_url(&gw, path));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };

    // No token or a wrong one: 401 and the token form, never the page.
    for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
        let r = get("/playground", auth).await.expect("page");
        assert_eq!(r.status(), 401, "{auth:?}");
        let body = r.text().await.expect("body");
        assert!(body.contains("action=\"/playground/login\""), "{body}");
        assert!(!body.contains("app.js") && !body.contains("id=\"preview\""));
    }
    let r = get("/playground/api/config", Some("Bearer wrong-token"))
        .await
        .expect("api");
    assert_eq!(r.status(), 401);

    // The right token: the page, with a policy that allows no inline code and names the public
    // listener's origins for images.
    let bearer = format!("Bearer {TOKEN}");
    let r = get("/playground", Some(&bearer)).await.expect("page");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    for host in ["demo.test", "shop.test"] {
        assert!(csp.contains(&format!("http://{host}:{}", gw.port)), "{csp}");
    }
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.text().await.expect("body").contains("/playground/app.js"));
    // The script and the style hold no secret and are served to anyone.
    let js = get("/playground/app.js", None).await.expect("js");
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/javascript")
    );

    // The token form: a wrong token gets 401 and no cookie; the right one a session cookie that
    // opens the page and is bound to this process and token.
    let login = |token: &str| {
        http.post(admin_url(&gw, "/playground/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let r = login("wrong-token").await.expect("login");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = login(TOKEN).await.expect("login");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/playground");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie does not carry the token"
    );
    let session = cookie.split(';').next().expect("pair").to_string();
    let with_cookie = |c: String| {
        http.get(admin_url(&gw, "/playground"))
            .header("Cookie", c)
            .send()
    };
    assert_eq!(
        with_cookie(session.clone()).await.expect("page").status(),
        200
    );
    let forged = format!("{}x", session);
    assert_eq!(with_cookie(forged).await.expect("page").status(), 401);
    // The cookie opens the playground only, not the other admin endpoints.
    let sign = http
        .get(admin_url(
            &gw,
            "/sign?site=demo&route=/img&path=/plain/a.jpg",
        ))
        .header("Cookie", session.clone())
        .send()
        .await
        .expect("sign");
    assert_eq!(sign.status(), 401);

    // The JSON endpoints: clear 400s for bad parameters, 404s for unknown names.
    let api = |path: &str| {
        let bearer = bearer.clone();
        let url = admin_url(&gw, path);
        let http = http.clone();
        async move {
            let r = http
                .get(url)
                .header("Authorization", bearer)
                .send()
                .await
                .expect("api");
            let status = r.status().as_u16();
            let body = r.bytes().await.expect("body");
            let v: Value = serde_json::from_slice(&body).expect("json");
            (status, v)
        }
    };
    for (path, status, says) in [
        ("/playground/api/images", 400, "site is required"),
        ("/playground/api/images?site=demo", 400, "route is required"),
        (
            "/playground/api/images?site=demo&route=/img&n=3",
            400,
            "unknown parameter",
        ),
        (
            "/playground/api/images?site=%G1&route=/img",
            400,
            "percent-encoding",
        ),
        (
            "/playground/api/images?site=nope&route=/img",
            404,
            "no site",
        ),
        (
            "/playground/api/images?site=demo&route=/",
            404,
            "no imgproxy route",
        ),
        (
            "/playground/api/sign?site=demo&route=/img&source=storm.jpg&options=rs:sideways",
            400,
            "refused",
        ),
        (
            "/playground/api/probe?site=demo&route=/img&url=/etc/passwd",
            400,
            "under the route",
        ),
        ("/playground/api/nope", 404, "no endpoint"),
    ] {
        let (got, v) = api(path).await;
        assert_eq!(got, status, "{path}: {v}");
        let message = v["error"].as_str().unwrap_or("");
        assert!(message.contains(says), "{path}: {message}");
    }
    let (_, v) = api("/playground/api/images?site=demo&route=/img").await;
    assert_eq!(v["images"][0], "mars.png");
    assert!(
        v["images"]
            .as_array()
            .expect("list")
            .contains(&json!("storm.jpg"))
    );
    let (_, v) = api("/playground/api/images?site=shop&route=/img").await;
    assert_eq!(v["local_root"], false);

    // Signed with the newest of the two keys: the public listener takes the URL.
    let (status, v) = api(
        "/playground/api/sign?site=demo&route=/img&source=storm.jpg&options=rs%3Afit%3A100%3A0&query=url%3Dstorm.jpg%26w%3D100%26h%3D0%26t%3Dfit",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["signature"]["key"], 2);
    for form in ["path_url", "query_url", "info_url", "original_url"] {
        let url = v[form].as_str().expect(form);
        let r = gw.get("demo.test", url).await;
        assert_eq!(r.status(), 200, "{form} {url}");
    }
    let (status, v) = api(&format!(
        "/playground/api/probe?site=demo&route=/img&url={}",
        v["path_url"].as_str().expect("path").replace(':', "%3A")
    ))
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_u64(), v["format"].as_str()),
        (Some(200), Some("jpeg"))
    );
    assert!(v["cache_status"].is_string());
}

/// The page in headless Chromium: log in, watch the first preview, change controls, check what
/// the page shows against what the public listener answers, copy, switch sites, shrink the
/// window, log out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_a_real_browser() {
    let origin = Origin::start("shop").await;
    origin.put(
        "storm.jpg",
        std::fs::read(demo_images().join("storm.jpg")).expect("storm"),
    );
    let gw = gateway(&origin).await;
    let driver = Driver::start().await;
    let b = driver
        .browser(&[
            "--window-size=1280,1100",
            "--host-resolver-rules=MAP demo.test 127.0.0.1, MAP shop.test 127.0.0.1",
        ])
        .await;
    let shots = screenshot_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    // Without a session: the token form; a wrong token gets it again, and no page.
    b.goto(&admin_url(&gw, "/playground")).await;
    let html = b.eval("return document.documentElement.outerHTML").await;
    assert!(
        html.as_str().unwrap_or("").contains("id=\"token\""),
        "{html}"
    );
    b.type_into("#token", "not-the-token").await;
    b.click("#login-submit").await;
    b.wait(
        "the token form again",
        "const m = document.getElementById('login-message'); \
         return !!m && m.textContent === 'That is not the admin token.'",
    )
    .await;
    assert_eq!(
        b.eval("return document.getElementById('preview')").await,
        Value::Null
    );

    // The right token opens the page, which opens on the first local image.
    b.type_into("#token", TOKEN).await;
    b.click("#login-submit").await;
    b.wait_preview("the first local image", "/plain/mars.png")
        .await;
    assert_eq!(b.value("#local").await, "mars.png");
    let first = b.natural_size("#preview").await;
    assert_eq!(first, (640, 320), "mars.png as it is");

    // Controls: storm.jpg, 240 wide, PNG. Both URL forms exist for this one.
    b.select("#local", "storm.jpg").await;
    b.type_into("#w", "240").await;
    b.select("#f", "png").await;
    b.wait_preview(
        "storm.jpg at 240 px as PNG",
        "/f:png/rs:fit:240:0/plain/storm.jpg",
    )
    .await;
    assert_eq!(b.natural_size("#preview").await, (240, 160));
    assert_eq!(b.fact("fact-format").await, "png");
    assert_eq!(b.fact("fact-status").await, "200");
    assert_eq!(b.fact("fact-size").await, "240x160");
    let cache = b.fact("fact-cache").await;
    assert!(
        cache == "MISS" || cache == "HIT",
        "X-Cache-Status {cache:?}"
    );
    let bytes: usize = b.fact("fact-bytes").await.parse().expect("bytes");
    assert_eq!(
        b.fact("info-size").await,
        "960x640",
        "the /info facts of the source"
    );
    assert_eq!(b.fact("info-format").await, "jpeg");

    let path_url = b.value("#url-path").await;
    let query_url = b.value("#url-query").await;
    let base = format!("http://demo.test:{}", gw.port);
    assert!(path_url.starts_with(&format!("{base}/img/")), "{path_url}");
    assert!(
        !path_url.contains("insecure"),
        "the demo route is signed: {path_url}"
    );
    assert!(
        query_url.starts_with(&format!(
            "{base}/img?url=storm.jpg&w=240&h=0&t=fit&f=png&sig="
        )),
        "{query_url}"
    );
    let answer = public_get(&gw, "demo.test", &path_url[base.len()..]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "image/png");
    assert_eq!(answer.body.len(), bytes, "the bytes the page shows");
    let d = imgforge::transform::testkit::decode(&answer.body);
    assert_eq!((d.width, d.height), (240, 160));
    // The query form is the same image: the same cache entry answers it.
    let answer = public_get(&gw, "demo.test", &query_url[base.len()..]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "image/png");
    assert_eq!(answer.cache_status.as_deref(), Some("HIT"));
    let d = imgforge::transform::testkit::decode(&answer.body);
    assert_eq!((d.width, d.height), (240, 160));
    let info = b.attr("#info-link", "href").await;
    let answer = public_get(&gw, "demo.test", &info[base.len()..]).await;
    let facts: Value = serde_json::from_slice(&answer.body).expect("info json");
    assert_eq!(
        (facts["width"].as_u64(), facts["height"].as_u64()),
        (Some(960), Some(640))
    );

    // The copy button.
    b.click("#copy-path").await;
    b.wait(
        "the copy button to answer",
        "return document.getElementById('copy-path').dataset.copied",
    )
    .await;
    assert_eq!(
        b.eval("return document.getElementById('copy-path').dataset.copied")
            .await,
        json!("yes")
    );

    // Smart crop to 300×200 WebP: path form only, the page says why.
    b.select("#rt", "fill").await;
    b.type_into("#w", "300").await;
    b.type_into("#h", "200").await;
    b.select("#g", "sm").await;
    b.select("#f", "webp").await;
    b.wait_preview(
        "a smart crop",
        "/f:webp/g:sm/rs:fill:300:200/plain/storm.jpg",
    )
    .await;
    assert_eq!(b.natural_size("#preview").await, (300, 200));
    assert_eq!(b.fact("fact-format").await, "webp");
    assert_eq!(b.value("#url-query").await, "");
    let note = b.text("#query-note").await;
    assert!(note.contains("gravity"), "{note}");
    let path_url = b.value("#url-path").await;
    let answer = public_get(&gw, "demo.test", &path_url[base.len()..]).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "image/webp")
    );
    let d = imgforge::transform::testkit::decode(&answer.body);
    assert_eq!((d.width, d.height), (300, 200));
    let snippet = b.value("#snippet").await;
    assert!(
        snippet.contains("generateImageUrl") && snippet.contains("\"resizing_type\": \"fill\"")
    );
    assert!(b.text("#sig-note").await.contains("key #2 of 2"));
    let wide = shots.join(format!("wide-{stamp}.png"));
    std::fs::write(&wide, b.screenshot().await).expect("screenshot");

    // The other site: an HTTP origin and an unsigned route.
    b.select("#site", "shop").await;
    b.type_into("#source", "f/storm.jpg").await;
    b.wait_preview("the shop's image", "/plain/f/storm.jpg")
        .await;
    let path_url = b.value("#url-path").await;
    let shop = format!("http://shop.test:{}", gw.port);
    assert!(
        path_url.starts_with(&format!("{shop}/img/insecure/")),
        "{path_url}"
    );
    assert_eq!(b.natural_size("#preview").await, (300, 200));
    let answer = public_get(&gw, "shop.test", &path_url[shop.len()..]).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "image/webp")
    );

    // A narrow screen: one column, nothing wider than the window.
    b.window(390, 844).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fits = b
        .eval("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(
        fits,
        json!(true),
        "the page scrolls sideways on a narrow screen"
    );
    let narrow = shots.join(format!("narrow-{stamp}.png"));
    std::fs::write(&narrow, b.screenshot().await).expect("screenshot");

    // No script, style or image was refused by the page's policy.
    let refused: Vec<String> = b
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");

    // Logging out ends the session.
    b.window(1280, 1100).await;
    b.click("#logout button").await;
    b.wait(
        "the token form after logout",
        "return !!document.getElementById('token')",
    )
    .await;
    b.quit().await;
    eprintln!("screenshots: {} {}", wide.display(), narrow.display());
}

// --- the public listener, as the test sees it ---------------------------------------------------

struct Public {
    status: u16,
    content_type: String,
    cache_status: Option<String>,
    body: Vec<u8>,
}

async fn public_get(gw: &Gateway, host: &str, path: &str) -> Public {
    let r = gw
        .request(reqwest::Method::GET, host, path)
        .header(
            "Accept",
            "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
        )
        .send()
        .await
        .expect("public listener");
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Public {
        status: r.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        cache_status: header("x-cache-status"),
        body: r.bytes().await.expect("body").to_vec(),
    }
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is TARGET/tmp: the screenshots go beside it, in TARGET/playground.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("playground");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

// --- a small WebDriver client -------------------------------------------------------------------

/// chromedriver on a loopback port; it and every browser process it started are stopped by
/// PID when dropped.
struct Driver {
    child: Child,
    port: u16,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        let driver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&driver).exists(),
            "{driver} is missing: install the Debian packages chromium and chromium-driver (scripts/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn chromedriver");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let d = Driver {
            child,
            port,
            http,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = d
                .http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await;
            if let Ok(r) = ready
                && let Ok(body) = r.bytes().await
                && let Ok(v) = serde_json::from_slice::<Value>(&body)
                && v["value"]["ready"] == json!(true)
            {
                return d;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless Chromium with a fresh profile.
    async fn browser(&self, extra: &[&str]) -> Browser<'_> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = self.dir.path().join("profile");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": chromium, "args": args },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "pageLoad": 30000, "script": 30000 }
                }
            }
        });
        let r: Value = self
            .http
            .post(format!("http://127.0.0.1:{}/session", self.port))
            .header("Content-Type", "application/json")
            .body(caps.to_string())
            .send()
            .await
            .expect("new session")
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let browsers = descendants(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in browsers {
            // SAFETY: kill(2) on a process this test started (a descendant of its chromedriver).
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Every process below `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid …": comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// One WebDriver session.
struct Browser<'d> {
    driver: &'d Driver,
    id: String,
}

impl Browser<'_> {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.driver.port, self.id
        );
        let mut r = self.driver.http.request(method, url);
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let v: Value = r
            .send()
            .await
            .expect("webdriver")
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if let Some(e) = v["value"]["error"].as_str() {
            panic!("webdriver {path}: {e}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        match v[ELEMENT].as_str() {
            Some(id) => id.to_string(),
            None => panic!("no element {css}: {v}"),
        }
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clears a field and types `text` into it, as a person would.
    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Picks the option with `value` of a `<select>` by clicking it.
    async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    async fn value(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/property/value"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/property/{name}"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The machine-readable value of one fact of the page (`data-value`).
    async fn fact(&self, id: &str) -> String {
        let v = self
            .eval(&format!(
                "return document.getElementById('{id}').dataset.value || null"
            ))
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no value for {id}"))
            .to_string()
    }

    async fn natural_size(&self, css: &str) -> (u64, u64) {
        let v = self
            .eval(&format!(
                "const i = document.querySelector('{css}'); return [i.naturalWidth, i.naturalHeight]"
            ))
            .await;
        (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0))
    }

    /// Waits until `script` returns something truthy.
    async fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(script).await;
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let state = self
                    .eval("const p = document.getElementById('problem'); return p ? p.textContent : document.title")
                    .await;
                panic!("waited 30 s for {what}; the page says {state}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the preview shows a URL ending in `ends` and has loaded.
    async fn wait_preview(&self, what: &str, ends: &str) {
        let script = format!(
            "const i = document.getElementById('preview'); \
             return !!i && i.dataset.state === 'loaded' && i.src.endsWith({ends:?}) && \
             document.getElementById('fact-size').dataset.value !== undefined"
        );
        self.wait(what, &script).await;
    }

    /// The top of the page, as a PNG.
    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        self.eval("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true")
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .expect("png")
    }

    async fn window(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// The browser console's messages since the last call.
    async fn console(&self) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn quit(self) {
        let url = format!("http://127.0.0.1:{}/session/{}", self.driver.port, self.id);
        let _ = self.driver.http.delete(url).send().await;
    }
}
