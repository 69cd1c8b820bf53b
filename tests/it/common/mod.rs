//! Test vocabulary: a real origin server on loopback, the real `imgforge` binary started on
//! ephemeral ports with a generated config, and an HTTP client.
//!
//! ```ignore
//! let origin = Origin::start("a").await;
//! let gw = Gateway::builder().config(&site("shop", &["shop.test"], &[origin.addr], "")).start().await;
//! let resp = gw.get("shop.test", "/x").await;
//! ```

pub mod raw_origin;
pub use raw_origin::{RawOrigin, Script};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// A free loopback port (bound then released), never one this process was given before: the
/// kernel can hand a just-released port out again at once (seen in CI: a gateway's public and
/// admin listeners got the same port and it refused to start).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<std::collections::HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(Default::default).insert(port) {
            return port;
        }
    }
}

/// What an origin saw and how it behaves.
#[derive(Default)]
pub struct OriginState {
    pub name: String,
    pub hits: AtomicUsize,
    pub healthy: AtomicBool,
    /// Headers of the last request to `/echo`-like paths.
    pub last_headers: Mutex<HashMap<String, String>>,
    /// Files served at `/f/{name}` (always as `application/octet-stream`, with an ETag).
    pub files: Mutex<HashMap<String, Vec<u8>>>,
}

/// A real HTTP origin on 127.0.0.1 (axum/hyper), running until dropped.
pub struct Origin {
    pub addr: SocketAddr,
    pub state: Arc<OriginState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Origin {
    /// Starts an origin whose `/id` answers `name`.
    ///
    /// Paths: `/id` (name), `/echo` (request headers as `k: v` lines), `/blob/{n}` (n bytes,
    /// Content-Length), `/chunked/{n}` (n bytes, chunked), `/slow/{ms}` (answers after ms),
    /// `/healthz` (200 or 503 by `state.healthy`), `/status/{code}`; anything else 404.
    pub async fn start(name: &str) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind origin");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(OriginState {
            name: name.to_string(),
            healthy: AtomicBool::new(true),
            ..Default::default()
        });
        let app = Router::new()
            .route("/id", get(id))
            .route("/echo", get(echo))
            .route("/blob/:n", get(blob))
            .route("/chunked/:n", get(chunked))
            .route("/slow/:ms", get(slow))
            .route("/healthz", get(healthz))
            .route("/status/:code", get(status))
            .route("/f/:name", get(file))
            .route("/cc/:max_age/:tag", get(cacheable))
            .fallback(fallback)
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Origin {
            addr,
            state,
            shutdown: Some(tx),
        }
    }

    /// Requests served so far (health checks excluded).
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Serves `bytes` at `/f/{name}`.
    pub fn put(&self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.state
            .files
            .lock()
            .expect("lock")
            .insert(name.to_string(), bytes.into());
    }

    /// Stops accepting connections.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

type St = State<Arc<OriginState>>;

fn count(s: &OriginState, headers: &HeaderMap) {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let map = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    *s.last_headers.lock().expect("lock") = map;
}

async fn id(State(s): St, headers: HeaderMap) -> String {
    count(&s, &headers);
    s.name.clone()
}

async fn echo(State(s): St, headers: HeaderMap) -> String {
    count(&s, &headers);
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap_or("")))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// Deterministic body of n bytes.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn blob(State(s): St, headers: HeaderMap, UrlPath(n): UrlPath<usize>) -> Response {
    count(&s, &headers);
    let body = pattern(n);
    ([("content-type", "application/octet-stream")], body).into_response()
}

async fn chunked(State(s): St, headers: HeaderMap, UrlPath(n): UrlPath<usize>) -> Response {
    count(&s, &headers);
    let data = pattern(n);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    Response::new(Body::from_stream(futures::stream::iter(chunks)))
}

async fn slow(State(s): St, headers: HeaderMap, UrlPath(ms): UrlPath<u64>) -> String {
    count(&s, &headers);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

async fn healthz(State(s): St) -> StatusCode {
    if s.healthy.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn status(State(s): St, headers: HeaderMap, UrlPath(code): UrlPath<u16>) -> StatusCode {
    count(&s, &headers);
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

async fn file(State(s): St, headers: HeaderMap, UrlPath(name): UrlPath<String>) -> Response {
    count(&s, &headers);
    let body = s.files.lock().expect("lock").get(&name).cloned();
    match body {
        Some(b) => {
            let etag = format!("\"{}-{}\"", name.len(), b.len());
            // A lying Content-Type: the gateway must sniff the bytes.
            (
                [
                    ("content-type", "application/octet-stream".to_string()),
                    ("etag", etag),
                ],
                b,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// `Cache-Control: max-age={max_age}` (or `no-store` when "none") with a strong ETag `"{tag}"`;
/// a matching `If-None-Match` gets 304. The body names the origin and counts its hits.
async fn cacheable(
    State(s): St,
    headers: HeaderMap,
    UrlPath((max_age, tag)): UrlPath<(String, String)>,
) -> Response {
    count(&s, &headers);
    let etag = format!("\"{tag}\"");
    let cc = if max_age == "none" {
        "no-store".to_string()
    } else {
        format!("max-age={max_age}")
    };
    if headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return (
            StatusCode::NOT_MODIFIED,
            [("etag", etag), ("cache-control", cc)],
        )
            .into_response();
    }
    let n = s.hits.load(Ordering::SeqCst);
    (
        [("etag", etag), ("cache-control", cc)],
        format!("{} #{n}", s.name),
    )
        .into_response()
}

async fn fallback(State(s): St, req: Request) -> Response {
    count(&s, req.headers());
    (StatusCode::NOT_FOUND, "origin: not found").into_response()
}

/// Builds a gateway config around the caller's sites.
pub struct GatewayBuilder {
    server_extra: String,
    rest: String,
    grace: String,
}

/// The real `imgforge` binary, running on ephemeral ports; killed (by PID) when dropped.
pub struct Gateway {
    pub port: u16,
    pub admin_port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Gateway {
    /// A builder; add sites with [`GatewayBuilder::config`].
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            server_extra: String::new(),
            rest: String::new(),
            grace: "5s".into(),
        }
    }
}

impl GatewayBuilder {
    /// TOML appended after `[server]` and `[log]` (sites, other sections).
    pub fn config(mut self, toml: &str) -> Self {
        self.rest.push_str(toml);
        self.rest.push('\n');
        self
    }

    /// Extra keys inside `[server]`.
    pub fn server(mut self, lines: &str) -> Self {
        self.server_extra.push_str(lines);
        self.server_extra.push('\n');
        self
    }

    /// `server.grace_period`.
    pub fn grace(mut self, g: &str) -> Self {
        self.grace = g.to_string();
        self
    }

    /// Writes the config, starts the binary and waits until `/readyz` answers 200.
    pub async fn start(self) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let admin_port = free_port();
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nadmin_listen = \"127.0.0.1:{admin_port}\"\nthreads = 2\ngrace_period = \"{grace}\"\nupgrade_sock = \"{d}/upgrade.sock\"\npid_file = \"{d}/imgforge.pid\"\n{extra}\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n{rest}",
            grace = self.grace,
            d = dir.path().display(),
            extra = self.server_extra,
            rest = self.rest,
        );
        let conf = dir.path().join("imgforge.toml");
        std::fs::write(&conf, text).expect("write config");
        let log = std::fs::File::create(dir.path().join("imgforge.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgforge"));
        cmd.arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn imgforge");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut gw = Gateway {
            port,
            admin_port,
            child,
            dir,
            client,
        };
        gw.wait_ready().await;
        gw
    }
}

impl Gateway {
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("imgforge exited early ({status}):\n{}", self.logs());
            }
            if let Ok((200, _)) = self.try_admin("/readyz").await {
                return;
            }
            if Instant::now() > deadline {
                panic!("imgforge not ready after 20s:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to this gateway's process only.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit, up to `limit`; returns its exit code if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("imgforge.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:port{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// A request builder with the Host header set.
    pub fn request(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Host", host)
    }

    /// `GET path` with `Host: host`.
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, host, path)
            .send()
            .await
            .expect("request to gateway")
    }

    /// `GET` of every path at once (each on its own task), responses in the order given.
    pub async fn concurrently(
        &self,
        host: &str,
        paths: impl IntoIterator<Item = String>,
    ) -> Vec<reqwest::Response> {
        let tasks: Vec<_> = paths
            .into_iter()
            .map(|p| tokio::spawn(self.request(reqwest::Method::GET, host, &p).send()))
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.expect("join").expect("request to gateway"));
        }
        out
    }

    async fn try_admin(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let r = self
            .client
            .get(format!("http://127.0.0.1:{}{}", self.admin_port, path))
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    /// `GET` on the admin listener: status and body.
    pub async fn admin(&self, path: &str) -> (u16, String) {
        self.try_admin(path).await.expect("admin request")
    }

    /// Sum of the samples of a metric whose line starts with `prefix` (name plus optional labels).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, text) = self.admin("/metrics").await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.starts_with(name)
                    && l[name.len()..].starts_with(['{', ' '])
                    && labels
                        .iter()
                        .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// [`Gateway::metric`] once it equals `want`, or its last value after 3 s: a request is
    /// counted in the logging phase, which may end just after the client has its response.
    pub async fn metric_settled(&self, name: &str, labels: &[(&str, &str)], want: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let v = self.metric(name, labels).await;
            if v == want || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Names of every sample in `/metrics` (histogram series keep their `_bucket`, `_sum`,
    /// `_count` suffix).
    pub async fn metric_names(&self) -> std::collections::BTreeSet<String> {
        let (_, text) = self.admin("/metrics").await;
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory tree of files, for `root = DIR` sites.
pub fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, data) in files {
        let p: PathBuf = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, data).expect("write");
    }
    dir
}

/// The routes most image tests put after a site: an unsigned imgproxy route at `/img` and a
/// plain proxy route for everything else.
pub const IMAGE_ROUTES: &str = r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/"
"#;

/// [`IMAGE_ROUTES`] with the proxy route cached for a minute.
pub const IMAGE_ROUTES_CACHED_ROOT: &str = r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/"
cache = true
cache_ttl = "1m"
"#;

/// TOML for a site with HTTP origin servers.
pub fn site(name: &str, hosts: &[&str], servers: &[SocketAddr], origin_extra: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [{}]\n[site.origin]\nservers = [{}]\n{origin_extra}\n",
        hosts.join(", "),
        servers.join(", ")
    )
}

/// TOML for a site served from a local directory.
pub fn root_site(name: &str, hosts: &[&str], root: &Path) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [{}]\n[site.origin]\nroot = \"{}\"\n",
        hosts.join(", "),
        root.display()
    )
}

/// A second `imgforge -u` process taking over a gateway's listeners; killed when dropped.
pub struct Successor {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts `imgforge -u` on the same config: it waits for the old process's listeners, which
    /// the old process hands over on SIGQUIT.
    pub fn spawn_upgrade(&self) -> Successor {
        let log = self.dir.path().join("successor.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_imgforge"))
            .arg("-u")
            .arg("-c")
            .arg(self.dir.path().join("imgforge.toml"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn successor");
        Successor { child, log }
    }
}
