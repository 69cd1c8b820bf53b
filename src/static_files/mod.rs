//! Serve a local directory as a site's origin (`root = "DIR"` in the config).
//!
//! # Use from the proxy
//!
//! ```ignore
//! // in ProxyHttp::request_filter, for a site with `root = ...`:
//! let path = session.req_header().uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
//! match site.local_root.serve(session, &path, &[]).await {
//!     Ok(served) => { /* log served.status / served.body_bytes */ Ok(true) }
//!     // The response could not be completed: return the error so Pingora
//!     // drops the connection (a Content-Length may have been promised).
//!     Err(e) => Err(pingora::Error::because(pingora::ErrorType::WriteError, "local root", e)),
//! }
//! ```
//!
//! # How errors are answered
//!
//! [`LocalRoot::serve`] **always answers the client itself**: 400 / 404 /
//! 405 / 416 / 500 get a short `text/plain` body (`not found\n`, …) and the
//! returned [`Served`] carries the status. It returns `Err` only when the
//! response could not be completed: the downstream write failed, or the file
//! failed (e.g. shrank) after the header was sent. In that case the
//! connection must not be reused.
//!
//! [`LocalRoot::read`] (for the image pipeline) writes nothing: it returns
//! `Err`, and [`LocalError::status`] / [`LocalError::client_message`] say
//! what to answer.
//!
//! # Safety rules
//!
//! * The request path is percent-decoded once, then `.`/`..` are normalised;
//!   anything that would climb above the root, or contains a backslash, is a
//!   traversal attempt: logged with `tracing::warn!` and answered 404.
//! * Malformed `%` escapes, NUL bytes and non-UTF-8 paths: 400.
//! * Hidden segments (`.git`, `.env`, …): 404.
//! * Symlinks are followed only while they stay inside the (canonical)
//!   root; an escaping link is logged and answered 404.
//! * Only regular files are served; a directory serves its `index.html`
//!   (at `/dir` and `/dir/` alike), never a listing.

mod conditional;
mod resolve;
mod serve;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

/// A directory served as an origin. Cheap to share (`Arc`) between requests.
#[derive(Debug, Clone)]
pub struct LocalRoot {
    /// Canonical (absolute, symlink-free) root: every served file's
    /// canonical path must start with it.
    root: PathBuf,
}

/// Outcome of a response that [`LocalRoot::serve`] wrote completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// HTTP status sent (200, 206, 304, 400, 404, 405, 416, 500).
    pub status: u16,
    /// Body bytes written (0 for HEAD and 304).
    pub body_bytes: u64,
}

/// A whole file read by [`LocalRoot::read`].
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// The file content.
    pub bytes: Bytes,
    /// Strong ETag, quoted, same as [`LocalRoot::serve`] would send.
    pub etag: String,
    /// File modification time.
    pub last_modified: SystemTime,
    /// MIME type guessed from the extension (`application/octet-stream`
    /// when unknown).
    pub content_type: String,
}

/// Errors of this module. See the module doc for who answers the client.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Malformed request path (bad `%` escape, NUL, non-UTF-8).
    #[error("bad request path")]
    BadRequest,
    /// Missing, hidden, not a regular file, or refused for safety (the
    /// reason is logged, never told to the client).
    #[error("not found")]
    NotFound,
    /// Method other than GET/HEAD.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// [`LocalRoot::read`]: the file is larger than `max_bytes`.
    #[error("file is {size} bytes, limit is {max}")]
    TooLarge {
        /// Actual size, or `max + 1` if it grew while being read.
        size: u64,
        /// The limit given by the caller.
        max: u64,
    },
    /// [`LocalRoot::new`]: the root is missing or not a directory.
    #[error("root directory {}: {source}", path.display())]
    Root {
        /// The directory as configured.
        path: PathBuf,
        /// Why it was refused.
        source: io::Error,
    },
    /// Unexpected file-system error (permissions are reported as NotFound).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// Building or writing the response failed; nothing more can be sent.
    #[error("writing response: {0}")]
    Downstream(Box<pingora::Error>),
}

impl LocalError {
    /// HTTP status that corresponds to this error.
    ///
    /// `Downstream` maps to 499 (nginx's "client closed request") for
    /// logging only: no response can be sent any more.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::TooLarge { .. } => 413,
            Self::Root { .. } | Self::Io(_) => 500,
            Self::Downstream(_) => 499,
        }
    }

    /// Short plain-text message safe to show a client: unlike `Display`, it
    /// never includes paths or OS error details.
    pub fn client_message(&self) -> &'static str {
        status_message(self.status())
    }
}

/// Fixed client-facing message per status, newline-terminated for curl users.
fn status_message(status: u16) -> &'static str {
    match status {
        400 => "bad request\n",
        404 => "not found\n",
        405 => "method not allowed\n",
        413 => "file too large\n",
        416 => "range not satisfiable\n",
        499 => "client closed request\n",
        _ => "internal server error\n",
    }
}

impl LocalRoot {
    /// Open a root directory. It must exist and be a directory; it is
    /// canonicalised once here so that later prefix checks are exact.
    pub fn new(dir: &Path) -> Result<Self, LocalError> {
        let root_err = |source| LocalError::Root {
            path: dir.to_path_buf(),
            source,
        };
        let root = dir.canonicalize().map_err(root_err)?;
        if !root.metadata().map_err(root_err)?.is_dir() {
            return Err(root_err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        Ok(Self { root })
    }

    /// The canonical root directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Serve `path` (as the client sent it; a `?query` is ignored) as a
    /// complete response on `session`: header and body, GET and HEAD,
    /// conditional requests and single byte ranges, streamed in 64 KiB
    /// chunks.
    ///
    /// Always answers the client (errors included) and returns what was
    /// sent; `Err` only if the response could not be completed, in which
    /// case the connection must be dropped. `extra_headers` go on every
    /// response (the gateway adds its `X-Request-Id`).
    pub async fn serve(
        &self,
        session: &mut pingora::proxy::Session,
        path: &str,
        extra_headers: &[(http::HeaderName, String)],
    ) -> Result<Served, LocalError> {
        serve::serve(self, session, path, extra_headers).await
    }

    /// Read a whole file (at most `max_bytes`) from a path relative to the
    /// root, with the same safety rules as [`serve`](Self::serve). A
    /// directory reads its `index.html`.
    pub async fn read(&self, path: &str, max_bytes: u64) -> Result<LocalFile, LocalError> {
        serve::read(self, path, max_bytes).await
    }
}
