//! Request size limits checked before anything else: the request target and the header block.
//! Pingora 0.9.1 reads headers of up to 1 MiB; a gateway has no use for more than a few KiB,
//! and every extra byte is memory held per connection and work for routing and logging.

use http::HeaderMap;

/// Which limit a request exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Oversized {
    /// The request target (path and query) is longer than `max_url_length` → 414.
    Url,
    /// The header fields together are larger than `max_header_size` → 431.
    Headers,
}

/// The size of a header block as sent: `name: value\r\n` per field.
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum()
}

/// Checks a request's target length and header bytes against the limits.
pub fn check(
    target_len: usize,
    header_bytes: usize,
    max_url: u64,
    max_headers: u64,
) -> Option<Oversized> {
    if target_len as u64 > max_url {
        Some(Oversized::Url)
    } else if header_bytes as u64 > max_headers {
        Some(Oversized::Headers)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(check(8192, 100, 8192, 1024), None, "at the limit passes");
        assert_eq!(check(8193, 100, 8192, 1024), Some(Oversized::Url));
        assert_eq!(check(10, 1025, 8192, 1024), Some(Oversized::Headers));
        assert_eq!(
            check(9000, 2000, 8192, 1024),
            Some(Oversized::Url),
            "the target is checked first"
        );
    }

    #[test]
    fn header_bytes_counts_names_values_and_separators() {
        let mut h = HeaderMap::new();
        h.insert("host", http::HeaderValue::from_static("a.test"));
        h.append("x-a", http::HeaderValue::from_static("1"));
        h.append("x-a", http::HeaderValue::from_static("22"));
        assert_eq!(header_bytes(&h), (4 + 6 + 4) + (3 + 1 + 4) + (3 + 2 + 4));
    }
}
