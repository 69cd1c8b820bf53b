//! Tests of `serve.rs` through a Pingora HTTP/1 session over an in-memory
//! duplex stream, with a temp-dir root.

use super::*;
use std::path::Path;
use tokio::io::AsyncWriteExt;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        let mut it = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let v = it.next().map(|(_, v)| v.as_str());
        assert!(it.next().is_none(), "duplicate header {name}");
        v
    }
}

/// Send `req` through a real Pingora HTTP/1 session over an in-memory
/// duplex stream and parse what `serve` wrote on the wire.
async fn roundtrip(root: &LocalRoot, req: &str) -> (Served, Resp) {
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let server_side = async move {
        let mut session = Session::new_h1(Box::new(server));
        assert!(
            session.read_request().await.unwrap_or(false),
            "request parse"
        );
        let path = session
            .req_header()
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str());
        let path = path.to_owned();
        let served = serve(root, &mut session, &path, &[]).await;
        drop(session); // closes the stream: the client sees EOF
        served
    };
    let client_side = async move {
        client
            .write_all(req.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        client
            .read_to_end(&mut out)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        out
    };
    let (served, wire) = tokio::join!(server_side, client_side);
    let served = served.unwrap_or_else(|e| panic!("serve failed: {e}"));
    let split = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&wire)));
    let head = String::from_utf8_lossy(&wire[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let resp = Resp {
        status,
        headers,
        body: wire[split + 4..].to_vec(),
    };
    assert_eq!(served.status, resp.status, "Served.status vs wire");
    assert_eq!(
        served.body_bytes,
        resp.body.len() as u64,
        "Served.body_bytes vs wire"
    );
    (served, resp)
}

async fn get(root: &LocalRoot, path: &str, extra: &str) -> Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    roundtrip(root, &req).await.1
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, data).unwrap_or_else(|e| panic!("{e}"));
}

/// tmp/root is the served root; tmp/outside holds a secret.
fn fixture() -> (tempfile::TempDir, LocalRoot) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("root");
    write(&dir, "img.jpg", b"0123456789");
    write(&dir, "sub/index.html", b"<h1>hi</h1>");
    write(&dir, ".env", b"SECRET=1");
    write(&dir, "empty.bin", b"");
    std::fs::create_dir_all(dir.join("nodex")).unwrap_or_else(|e| panic!("{e}"));
    write(tmp.path(), "outside/secret.txt", b"top secret");
    let root = LocalRoot::new(&dir).unwrap_or_else(|e| panic!("{e}"));
    (tmp, root)
}

fn assert_error(r: &Resp, status: u16, body: &str) {
    assert_eq!(r.status, status);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(r.body, body.as_bytes());
}

#[tokio::test]
async fn get_200_with_headers() {
    let (_t, root) = fixture();
    let r = get(&root, "/img.jpg?w=10", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"0123456789");
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let meta = std::fs::metadata(root.dir().join("img.jpg")).unwrap_or_else(|e| panic!("{e}"));
    let mtime = meta.modified().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.header("etag"),
        Some(conditional::etag(10, mtime).as_str())
    );
    assert_eq!(
        r.header("last-modified"),
        Some(httpdate::fmt_http_date(mtime).as_str())
    );
    assert!(r.header("content-range").is_none());
}

#[tokio::test]
async fn head_has_headers_no_body() {
    let (_t, root) = fixture();
    let (served, r) = roundtrip(&root, "HEAD /img.jpg HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(
        served,
        Served {
            status: 200,
            body_bytes: 0
        }
    );
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert!(r.header("etag").is_some() && r.body.is_empty());
    // HEAD ignores Range (only defined for GET).
    let req = "HEAD /img.jpg HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n";
    assert_eq!(roundtrip(&root, req).await.1.status, 200);
    let r = roundtrip(&root, "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .1;
    assert_eq!((r.status, r.header("content-length")), (404, Some("10")));
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn not_modified_both_ways() {
    let (_t, root) = fixture();
    let first = get(&root, "/img.jpg", "").await;
    let (Some(etag), Some(lm)) = (first.header("etag"), first.header("last-modified")) else {
        panic!("validators missing");
    };
    for extra in [
        format!("If-None-Match: \"x\", W/{etag}\r\n"),
        "If-None-Match: *\r\n".to_owned(),
        format!("If-Modified-Since: {lm}\r\n"),
    ] {
        let r = get(&root, "/img.jpg", &extra).await;
        assert_eq!(r.status, 304, "{extra}");
        assert_eq!(r.header("etag"), Some(etag));
        assert_eq!(r.header("last-modified"), Some(lm));
        assert!(r.body.is_empty());
    }
    let r = get(&root, "/img.jpg", "If-None-Match: \"x\"\r\n").await;
    assert_eq!(r.status, 200);
    let r = get(
        &root,
        "/img.jpg",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn ranges() {
    let (_t, root) = fixture();
    let r = get(&root, "/img.jpg", "Range: bytes=2-5\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"2345");
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
    let r = get(&root, "/img.jpg", "Range: bytes=-3\r\n").await;
    assert_eq!((r.status, r.body.as_slice()), (206, b"789".as_slice()));
    assert_eq!(r.header("content-range"), Some("bytes 7-9/10"));

    let r = get(&root, "/img.jpg", "Range: bytes=10-\r\n").await;
    assert_error(&r, 416, "range not satisfiable\n");
    assert_eq!(r.header("content-range"), Some("bytes */10"));

    let r = get(&root, "/img.jpg", "Range: bytes=0-1,4-5\r\n").await;
    assert_eq!((r.status, r.body.len()), (200, 10));
    let r = get(
        &root,
        "/img.jpg",
        "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n",
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 10));
    let etag = get(&root, "/img.jpg", "")
        .await
        .header("etag")
        .map(str::to_owned);
    let extra = format!(
        "Range: bytes=0-1\r\nIf-Range: {}\r\n",
        etag.unwrap_or_default()
    );
    assert_eq!(get(&root, "/img.jpg", &extra).await.status, 206);
}

#[tokio::test]
async fn method_not_allowed() {
    let (_t, root) = fixture();
    let req = "POST /img.jpg HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    let r = roundtrip(&root, req).await.1;
    assert_error(&r, 405, "method not allowed\n");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn errors_and_traversal() {
    let (_t, root) = fixture();
    for path in [
        "/nope.jpg",
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/..%2foutside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/.env",
        "/%2eenv",
        "/nodex/",
        "/img.jpg/",
        "/img.jpg/x",
    ] {
        assert_error(&get(&root, path, "").await, 404, "not found\n");
    }
    assert_error(&get(&root, "/a%zz", "").await, 400, "bad request\n");
    assert_error(&get(&root, "/a%00b", "").await, 400, "bad request\n");
}

#[tokio::test]
async fn directory_index_and_empty_file() {
    let (_t, root) = fixture();
    for path in ["/sub/", "/sub", "/sub/./"] {
        let r = get(&root, path, "").await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"<h1>hi</h1>".as_slice()),
            "{path}"
        );
        assert_eq!(r.header("content-type"), Some("text/html"));
    }
    assert_eq!(get(&root, "/", "").await.status, 404);
    let r = get(&root, "/empty.bin", "").await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks() {
    use std::os::unix::fs::symlink;
    let (t, root) = fixture();
    let dir = root.dir().to_path_buf();
    let link = |target: &Path, name: &str| {
        symlink(target, dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    };
    link(&t.path().join("outside/secret.txt"), "escape.txt");
    link(&t.path().join("outside"), "escdir");
    link(&dir.join(".env"), "visible.txt");
    link(&dir.join("img.jpg"), "alias.png");
    link(Path::new("../outside/secret.txt"), "relative.txt");
    for path in [
        "/escape.txt",
        "/escdir/secret.txt",
        "/visible.txt",
        "/relative.txt",
    ] {
        assert_error(&get(&root, path, "").await, 404, "not found\n");
    }
    // Inside links work; the type follows the requested name.
    let r = get(&root, "/alias.png", "").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
}

#[tokio::test]
async fn big_file_streams_with_ranges() {
    let (_t, root) = fixture();
    let data: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    write(root.dir(), "big.avif", &data);
    let (served, r) = roundtrip(&root, "GET /big.avif HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(
        served,
        Served {
            status: 200,
            body_bytes: data.len() as u64
        }
    );
    assert_eq!(r.header("content-length"), Some("5242880"));
    assert_eq!(r.header("content-type"), Some("image/avif"));
    assert!(r.body == data, "body differs");
    // A range crossing chunk boundaries.
    let r = get(&root, "/big.avif", "Range: bytes=65530-200000\r\n").await;
    assert_eq!(r.status, 206);
    assert!(r.body == data[65530..=200000], "range body differs");
}

#[tokio::test]
async fn read_whole_files() {
    let (_t, root) = fixture();
    for (name, ty) in [
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.PNG", "image/png"),
        ("a.webp", "image/webp"),
        ("a.avif", "image/avif"),
        ("a.gif", "image/gif"),
        ("a.svg", "image/svg+xml"),
        ("a", "application/octet-stream"),
    ] {
        write(root.dir(), name, b"x");
        let f = root
            .read(name, 10)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (f.content_type.as_str(), f.bytes.as_ref()),
            (ty, b"x".as_slice())
        );
    }
    let f = root
        .read("/img.jpg", 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.etag, conditional::etag(10, f.last_modified));
    let too_big = root.read("img.jpg", 9).await;
    assert!(matches!(
        too_big,
        Err(LocalError::TooLarge { size: 10, max: 9 })
    ));
    assert!(matches!(root.read("sub", 100).await, Ok(f) if f.bytes.as_ref() == b"<h1>hi</h1>"));
    for bad in ["../outside/secret.txt", ".env", "nope", "nodex"] {
        let e = root.read(bad, 100).await.err().map(|e| e.status());
        assert_eq!(e, Some(404), "{bad}");
    }
    assert_eq!(
        root.read("%zz", 1).await.err().map(|e| e.status()),
        Some(400)
    );
}

#[test]
fn new_requires_a_directory() {
    let (t, root) = fixture();
    assert!(root.dir().is_absolute());
    assert!(LocalRoot::new(&t.path().join("missing")).is_err());
    let e = LocalRoot::new(&root.dir().join("img.jpg"))
        .err()
        .map(|e| e.status());
    assert_eq!(e, Some(500));
}

/// The lead calls `serve` from an `async_trait` `request_filter`, which
/// needs a `Send` future: this only compiles if it is one.
#[test]
fn serve_future_is_send() {
    fn check<'a>(
        root: &'a LocalRoot,
        session: &'a mut Session,
    ) -> impl Future<Output = Result<Served, LocalError>> + Send + 'a {
        root.serve(session, "/", &[])
    }
    let _ = check;
}
