//! How the edge and the image service agree on a request: the URL parse both run (so they
//! accept and refuse the same requests) and the headers the edge adds on its hop to the image
//! service.

use crate::{ImageRequest, RequestHints, RouteSettings, UrlError};

/// Header naming the site an image request belongs to (set by the edge, never by clients).
pub const INTERNAL_SITE: &str = "x-imgforge-site";
/// Header naming the route prefix (set by the edge).
pub const INTERNAL_ROUTE: &str = "x-imgforge-route";
/// Header carrying the route's identity as a [`RouteToken`] (set by the edge): the image
/// service finds the route by it without searching the configuration.
pub const INTERNAL_ROUTE_ID: &str = "x-imgforge-route-id";

/// A route of one routing table, as the edge names it to the image service:
/// `EPOCH.SITE.ROUTE` (the table's epoch, the site's index, the route's index in the site).
/// A table rebuilt by a reload has another epoch, so a token never names a route of a table
/// it was not made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteToken {
    pub epoch: u64,
    pub site: usize,
    pub route: usize,
}

impl std::fmt::Display for RouteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.epoch, self.site, self.route)
    }
}

impl std::str::FromStr for RouteToken {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.splitn(3, '.').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(epoch)), Some(Ok(site)), Some(Ok(route))) => Ok(RouteToken {
                epoch,
                site: usize::try_from(site).map_err(|_| ())?,
                route: usize::try_from(route).map_err(|_| ())?,
            }),
            _ => Err(()),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_tokens_round_trip_and_refuse_garbage() {
        let t = RouteToken {
            epoch: 7,
            site: 2,
            route: 11,
        };
        assert_eq!(t.to_string(), "7.2.11");
        assert_eq!("7.2.11".parse::<RouteToken>(), Ok(t));
        for bad in ["", "7", "7.2", "7.2.x", "-1.0.0", "1.2.3.4", "a.b.c"] {
            assert!(bad.parse::<RouteToken>().is_err(), "{bad}");
        }
    }
}
