//! I/O half: locate and open the file safely, then write the Pingora
//! response and stream the body.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::Method;
use http::header::{self, HeaderName};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::conditional::{self, Conditions, Decision};
use super::resolve::{self, Rejection};
use super::{LocalError, LocalFile, LocalRoot, Served, status_message};

/// Body chunk size: large enough for few syscalls, small enough that a
/// multi-GB file never sits in memory.
const CHUNK: usize = 64 * 1024;

/// An opened regular file below the root.
struct Opened {
    file: File,
    len: u64,
    mtime: SystemTime,
    /// The name the client asked for (plus `index.html`), not the symlink
    /// target: the content type follows the URL like on any web server.
    name: PathBuf,
}

impl Opened {
    fn etag(&self) -> String {
        conditional::etag(self.len, self.mtime)
    }

    fn content_type(&self) -> String {
        mime_guess::from_path(&self.name)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned()
    }
}

/// Resolve `path` and open it, enforcing every safety rule.
async fn open(root: &LocalRoot, path: &str) -> Result<Opened, LocalError> {
    let safe = match resolve::resolve(path) {
        Ok(p) => p,
        Err(Rejection::Malformed) => return Err(LocalError::BadRequest),
        Err(Rejection::Traversal) => {
            tracing::warn!(path, "static_files: path traversal attempt refused");
            return Err(LocalError::NotFound);
        }
        Err(Rejection::Hidden) => return Err(LocalError::NotFound),
    };
    let mut name = root.root.join(safe.relative());
    let mut canonical = checked_canonical(root, &name, path).await?;
    let mut meta = tokio::fs::metadata(&canonical).await.map_err(fs_err)?;
    if meta.is_dir() {
        name.push("index.html");
        canonical = checked_canonical(root, &name, path).await?;
        meta = tokio::fs::metadata(&canonical).await.map_err(fs_err)?;
    } else if safe.trailing_slash {
        return Err(LocalError::NotFound);
    }
    // Checked before open(): opening a FIFO would block, a device could be
    // anything.
    if !meta.is_file() {
        return Err(LocalError::NotFound);
    }
    let file = File::open(&canonical).await.map_err(fs_err)?;
    // Re-stat the handle itself: the path may have changed since the check,
    // and headers must describe the bytes actually streamed.
    let meta = file.metadata().await.map_err(fs_err)?;
    if !meta.is_file() {
        return Err(LocalError::NotFound);
    }
    Ok(Opened {
        file,
        len: meta.len(),
        mtime: meta.modified().unwrap_or(UNIX_EPOCH),
        name,
    })
}

/// Canonicalise `candidate` and make sure it (after following symlinks) is
/// still below the root and not hidden there.
async fn checked_canonical(
    root: &LocalRoot,
    candidate: &Path,
    path: &str,
) -> Result<PathBuf, LocalError> {
    let canonical = tokio::fs::canonicalize(candidate).await.map_err(fs_err)?;
    let Ok(rel) = canonical.strip_prefix(&root.root) else {
        tracing::warn!(path, "static_files: symlink escaping the root refused");
        return Err(LocalError::NotFound);
    };
    // A visible symlink must not expose a hidden file (`pub -> .env`).
    if rel
        .components()
        .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
    {
        return Err(LocalError::NotFound);
    }
    Ok(canonical)
}

/// File-system errors that just mean "nothing to serve here" become 404;
/// permission errors too, so that 403 does not confirm a file exists.
fn fs_err(e: io::Error) -> LocalError {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound | NotADirectory | PermissionDenied | InvalidFilename | IsADirectory => {
            LocalError::NotFound
        }
        _ => LocalError::Io(e),
    }
}

fn downstream(e: Box<pingora::Error>) -> LocalError {
    LocalError::Downstream(e)
}

fn set(resp: &mut ResponseHeader, name: HeaderName, value: String) -> Result<(), LocalError> {
    resp.insert_header(name, value).map_err(downstream)
}

fn set_all(resp: &mut ResponseHeader, extra: &[(HeaderName, String)]) -> Result<(), LocalError> {
    for (name, value) in extra {
        set(resp, name.clone(), value.clone())?;
    }
    Ok(())
}

/// Write a complete plain-text error response.
async fn answer_error(
    session: &mut Session,
    extra: &[(HeaderName, String)],
    status: u16,
    is_head: bool,
    total_len: Option<u64>,
) -> Result<Served, LocalError> {
    let msg = status_message(status);
    let mut resp = ResponseHeader::build(status, Some(5)).map_err(downstream)?;
    set_all(&mut resp, extra)?;
    set(
        &mut resp,
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8".into(),
    )?;
    set(&mut resp, header::CONTENT_LENGTH, msg.len().to_string())?;
    set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())?;
    if status == 405 {
        set(&mut resp, header::ALLOW, "GET, HEAD".into())?;
    }
    if let Some(len) = total_len {
        set(&mut resp, header::CONTENT_RANGE, format!("bytes */{len}"))?;
    }
    session
        .write_response_header(Box::new(resp), is_head)
        .await
        .map_err(downstream)?;
    let body = (!is_head).then(|| Bytes::from_static(msg.as_bytes()));
    let body_bytes = body.as_ref().map_or(0, |b| b.len() as u64);
    session
        .write_response_body(body, true)
        .await
        .map_err(downstream)?;
    Ok(Served { status, body_bytes })
}

/// See [`LocalRoot::serve`].
pub(super) async fn serve(
    root: &LocalRoot,
    session: &mut Session,
    path: &str,
    extra: &[(HeaderName, String)],
) -> Result<Served, LocalError> {
    let method = session.req_header().method.clone();
    let is_head = method == Method::HEAD;
    if method != Method::GET && !is_head {
        return answer_error(session, extra, 405, is_head, None).await;
    }
    let opened = match open(root, path).await {
        Ok(o) => o,
        Err(e) => {
            if let LocalError::Io(io) = &e {
                tracing::error!(path, error = %io, "static_files: cannot open file");
            }
            return answer_error(session, extra, e.status(), is_head, None).await;
        }
    };

    let etag = opened.etag();
    let decision = {
        let h = &session.req_header().headers;
        let text = |name: HeaderName| h.get(name).and_then(|v| v.to_str().ok());
        // Several If-None-Match lines form one list.
        let inm: Vec<&str> = h
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let inm = (!inm.is_empty()).then(|| inm.join(","));
        let c = Conditions {
            is_get: !is_head,
            if_none_match: inm.as_deref(),
            if_modified_since: text(header::IF_MODIFIED_SINCE),
            range: text(header::RANGE),
            if_range: text(header::IF_RANGE),
        };
        conditional::decide(&c, &etag, opened.mtime, opened.len)
    };

    let (status, start, end) = match decision {
        Decision::RangeNotSatisfiable => {
            return answer_error(session, extra, 416, is_head, Some(opened.len)).await;
        }
        Decision::NotModified => (304, 0, 0),
        Decision::Full => (200, 0, opened.len),
        Decision::Partial { start, end } => (206, start, end + 1),
    };

    let mut resp = ResponseHeader::build(status, Some(8)).map_err(downstream)?;
    set_all(&mut resp, extra)?;
    set(&mut resp, header::ETAG, etag)?;
    set(
        &mut resp,
        header::LAST_MODIFIED,
        conditional::http_date(opened.mtime),
    )?;
    if status != 304 {
        set(&mut resp, header::CONTENT_TYPE, opened.content_type())?;
        set(&mut resp, header::CONTENT_LENGTH, (end - start).to_string())?;
        set(&mut resp, header::ACCEPT_RANGES, "bytes".into())?;
        // Keeps browsers from sniffing e.g. an uploaded .jpg as HTML.
        set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())?;
    }
    if status == 206 {
        let range = format!("bytes {start}-{}/{}", end - 1, opened.len);
        set(&mut resp, header::CONTENT_RANGE, range)?;
    }

    let no_body = is_head || status == 304 || start == end;
    session
        .write_response_header(Box::new(resp), no_body)
        .await
        .map_err(downstream)?;
    if no_body {
        session
            .write_response_body(None, true)
            .await
            .map_err(downstream)?;
        return Ok(Served {
            status,
            body_bytes: 0,
        });
    }
    let body_bytes = stream_body(session, opened.file, start, end, path).await?;
    Ok(Served { status, body_bytes })
}

/// Stream `start..end` of `file` in [`CHUNK`]s. The header is already out,
/// so any failure here leaves an incomplete response: return `Err`.
async fn stream_body(
    session: &mut Session,
    mut file: File,
    start: u64,
    end: u64,
    path: &str,
) -> Result<u64, LocalError> {
    let io_fail = |e: io::Error| {
        tracing::warn!(path, error = %e, "static_files: read failed mid-response");
        LocalError::Io(e)
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await.map_err(io_fail)?;
    }
    let mut remaining = end - start;
    let mut sent = 0u64;
    let mut buf = BytesMut::new();
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64);
        // `want` <= CHUNK, so the cast cannot truncate.
        buf.reserve(want as usize);
        let n = (&mut file)
            .take(want)
            .read_buf(&mut buf)
            .await
            .map_err(io_fail)? as u64;
        if n == 0 {
            // The file shrank after we promised Content-Length.
            return Err(io_fail(io::ErrorKind::UnexpectedEof.into()));
        }
        remaining -= n;
        sent += n;
        session
            .write_response_body(Some(buf.split().freeze()), remaining == 0)
            .await
            .map_err(downstream)?;
    }
    Ok(sent)
}

/// See [`LocalRoot::read`].
pub(super) async fn read(
    root: &LocalRoot,
    path: &str,
    max_bytes: u64,
) -> Result<LocalFile, LocalError> {
    let opened = open(root, path).await?;
    if opened.len > max_bytes {
        return Err(LocalError::TooLarge {
            size: opened.len,
            max: max_bytes,
        });
    }
    let etag = opened.etag();
    let content_type = opened.content_type();
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len).unwrap_or(0));
    // Bounded again while reading: the file may grow after the stat.
    opened
        .file
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() as u64 > max_bytes {
        return Err(LocalError::TooLarge {
            size: max_bytes.saturating_add(1),
            max: max_bytes,
        });
    }
    Ok(LocalFile {
        bytes: Bytes::from(bytes),
        etag,
        last_modified: opened.mtime,
        content_type,
    })
}

// The tests drive `serve` through a real Pingora HTTP/1 session; they are
// long enough to live in their own file.
#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
