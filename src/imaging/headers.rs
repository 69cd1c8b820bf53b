//! Response headers of transformed images (pure).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Strong ETag of a variant: derived from the source's validator (or its bytes when the origin
/// gave none) and the variant key, so it changes when either does.
pub fn variant_etag(
    source_validator: Option<&str>,
    source_bytes: &[u8],
    variant_key: &str,
) -> String {
    let mut h = Sha256::new();
    match source_validator {
        Some(v) => h.update(v.as_bytes()),
        None => h.update(Sha256::digest(source_bytes)),
    }
    h.update(b"\0");
    h.update(variant_key.as_bytes());
    let digest = h.finalize();
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..18]))
}

/// Whether `If-None-Match` (a list, `*`, weak or strong tags) matches `etag`.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

/// `Content-Disposition` for `filename` / `return_attachment`; `None` when neither is set and the
/// default (inline, browser-chosen name) is fine.
pub fn content_disposition(
    filename: Option<&str>,
    attachment: bool,
    source_path: &str,
    ext: &str,
) -> Option<String> {
    if filename.is_none() && !attachment {
        return None;
    }
    let stem = filename.map(str::to_string).unwrap_or_else(|| {
        let last = source_path.rsplit('/').next().unwrap_or("image");
        let last = last.split(['?', '#']).next().unwrap_or("image");
        last.rsplit_once('.').map_or(last, |(s, _)| s).to_string()
    });
    // Only a conservative character set goes into the quoted form; everything else is dropped so
    // a hostile name cannot break out of the header.
    let safe: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_. ()".contains(*c))
        .take(120)
        .collect();
    let safe = if safe.trim().is_empty() {
        "image".to_string()
    } else {
        safe
    };
    let kind = if attachment { "attachment" } else { "inline" };
    Some(format!("{kind}; filename=\"{safe}.{ext}\""))
}

/// Percent-encodes a decoded path for the wire (keeps `/` and unreserved characters).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_source_and_variant() {
        let a = variant_etag(Some("\"v1\""), b"", "k1");
        assert_eq!(a, variant_etag(Some("\"v1\""), b"other bytes", "k1"));
        assert_ne!(a, variant_etag(Some("\"v2\""), b"", "k1"));
        assert_ne!(a, variant_etag(Some("\"v1\""), b"", "k2"));
        assert_ne!(variant_etag(None, b"x", "k"), variant_etag(None, b"y", "k"));
        assert!(if_none_match(&format!("\"zzz\", W/{a}"), &a));
        assert!(if_none_match("*", &a));
        assert!(!if_none_match("\"zzz\"", &a));
    }

    #[test]
    fn disposition() {
        assert_eq!(content_disposition(None, false, "/a/b.jpg", "webp"), None);
        assert_eq!(
            content_disposition(None, true, "/a/photo.jpg?x=1", "webp").as_deref(),
            Some("attachment; filename=\"photo.webp\"")
        );
        assert_eq!(
            content_disposition(Some("my\"evil\r\nname"), false, "/a.jpg", "png").as_deref(),
            Some("inline; filename=\"myevilname.png\"")
        );
    }

    #[test]
    fn path_encoding() {
        assert_eq!(encode_path("/a b/ü%.jpg"), "/a%20b/%C3%BC%25.jpg");
    }
}
