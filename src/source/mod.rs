//! Fetching source images: from a site's origin pool, its local root, or an allowed absolute
//! URL. Bodies are read with a size limit enforced while streaming (the download stops as soon as
//! it is exceeded) and an overall deadline.

mod http_fetch;

use std::time::Duration;

use bytes::Bytes;

use crate::protect::ssrf::{AddressPolicy, Denied};
use crate::static_files::{LocalError, LocalRoot};
use crate::upstream::Pool;

pub use http_fetch::Fetcher;

/// A downloaded source.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// The origin's validator, for ETags and revalidation.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// What the origin claimed (never trusted for the format: bytes are sniffed).
    pub content_type: Option<String>,
    /// The origin's `Cache-Control`, for the source cache's freshness.
    pub cache_control: Option<String>,
    /// The server that answered, for the access log.
    pub from: Option<String>,
}

/// Where to fetch from.
pub enum Target<'a> {
    /// A path on the site's origin pool.
    Pool {
        pool: &'a Pool,
        path: &'a str,
        /// `Host` for the origin (the pool's `host_header` wins).
        host: Option<&'a str>,
    },
    /// A file under the site's local root.
    Local { root: &'a LocalRoot, path: &'a str },
    /// An absolute `http(s)` URL, already checked against the route's allowed sources.
    Url { url: &'a str, policy: AddressPolicy },
}

/// Limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_bytes: u64,
    /// For the whole download, redirects included.
    pub timeout: Duration,
    pub max_redirects: usize,
}

/// Why a source could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("source not found")]
    NotFound,
    #[error("origin answered {0}")]
    OriginStatus(u16),
    #[error("source is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("source download timed out")]
    Timeout,
    #[error("origin unreachable: {0}")]
    Unreachable(String),
    #[error("source address refused: {0}")]
    Blocked(Denied),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("invalid source URL: {0}")]
    BadUrl(String),
    #[error("local source: {0}")]
    Local(LocalError),
}

impl FetchError {
    /// The status the client gets: missing → 404, too large → 422, unreachable or broken
    /// origin → 502, timeout → 504, refused address → 403.
    pub fn status(&self) -> u16 {
        match self {
            // imgproxy answers a source address the SSRF guard refuses like a missing source.
            FetchError::NotFound | FetchError::BadUrl(_) | FetchError::Blocked(_) => 404,
            FetchError::OriginStatus(s) if (400..500).contains(s) => 404,
            FetchError::OriginStatus(_) => 502,
            FetchError::TooLarge { .. } => 422,
            FetchError::Timeout => 504,
            FetchError::Unreachable(_) | FetchError::TooManyRedirects => 502,
            FetchError::Local(e) => match e.status() {
                413 => 422,
                s => s,
            },
        }
    }

    /// Short text for the client.
    pub fn message(&self) -> String {
        match self {
            FetchError::Local(e) => format!("source: {}", e.client_message().trim_end()),
            e => format!("source: {e}"),
        }
    }

    /// The `kind` label of `imgforge_upstream_errors_total` when the origin failed (could not
    /// be reached, was too slow, answered 5xx, redirected in circles); `None` when the request
    /// or the source was at fault (missing, too large, refused, bad URL, local file).
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            FetchError::Timeout => Some("timeout"),
            FetchError::Unreachable(_) => Some("unreachable"),
            FetchError::OriginStatus(s) if *s >= 500 => Some("bad_status"),
            FetchError::TooManyRedirects => Some("redirects"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_origin_failures_are_upstream_errors() {
        let cases = [
            (FetchError::Timeout, Some("timeout")),
            (
                FetchError::Unreachable("refused".into()),
                Some("unreachable"),
            ),
            (FetchError::OriginStatus(503), Some("bad_status")),
            (FetchError::TooManyRedirects, Some("redirects")),
            (FetchError::OriginStatus(404), None),
            (FetchError::NotFound, None),
            (FetchError::TooLarge { limit: 1 }, None),
            (FetchError::BadUrl("x".into()), None),
        ];
        for (e, want) in cases {
            assert_eq!(e.upstream_kind(), want, "{e}");
        }
    }
}
