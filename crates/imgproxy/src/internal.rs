//! How the edge and the image service agree on a request: the URL parse both run (so they
//! accept and refuse the same requests) and the headers the edge adds on its hop to the image
//! service.

use crate::{ImageRequest, RequestHints, RouteSettings, UrlError};

/// Header naming the site an image request belongs to (set by the edge, never by clients).
pub const INTERNAL_SITE: &str = "x-imgforge-site";
/// Header naming the route prefix (set by the edge).
pub const INTERNAL_ROUTE: &str = "x-imgforge-route";

/// Parses and verifies the image URL of a request on the route at `prefix` (the edge and the
/// image service both call this, so they agree on every request): an imgproxy path, or the query
/// API (`PREFIX?url=…&w=…&sig=…`). `PREFIX/info/SIGNATURE/…`
/// asks for the source's facts as JSON instead of an image (signed like any URL); the second
/// value says so.
pub fn parse_image_url(
    uri: &http::Uri,
    headers: &http::HeaderMap,
    prefix: &str,
    settings: &RouteSettings,
) -> Result<(ImageRequest, bool), UrlError> {
    let rest = uri
        .path()
        .strip_prefix(prefix.trim_end_matches('/'))
        .unwrap_or("");
    let (rest, info) = match rest.strip_prefix("/info/") {
        Some(r) => (&rest[5..], !r.is_empty()),
        None => (rest, false),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let query = uri.query();
    if let Some(q) = query.filter(|_| crate::query::is_query_request(rest, query)) {
        let hints = RequestHints::from_headers(headers);
        return crate::parse_query_request(q, &hints, settings, now).map(|r| (r, false));
    }
    crate::parse_request(rest, &RequestHints::from_headers(headers), settings, now)
        .map(|r| (r, info))
}
