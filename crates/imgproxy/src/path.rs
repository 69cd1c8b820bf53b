//! Path grammar: signature split, imgproxy's path "re-denormalisation", and the
//! source part (`plain/…@ext` or Base64 `….ext`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::error::{UrlError, echo};

/// URL-safe Base64 without padding that, like Go's `RawURLEncoding`, accepts
/// non-zero trailing bits (clients built for imgproxy may produce them).
pub(crate) const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Splits `/signature/rest?query` into the signature and the re-denormalised
/// rest (no leading `/`), which is also what the signature covers.
pub(crate) fn split_signature(path: &str) -> Result<(&str, Cow<'_, str>), UrlError> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let path = path.strip_prefix('/').unwrap_or(path);
    match path.split_once('/') {
        Some((sig, rest)) if !sig.is_empty() && !rest.is_empty() => Ok((sig, redenormalize(rest))),
        _ => Err(UrlError::InvalidPath(echo(path))),
    }
}

/// Undoes what browsers, CDNs and proxies do to image URLs: `%3A` in the
/// options part becomes `:` again, and `scheme:/host` at the start of a plain
/// source becomes `scheme://host` (`local:/x` → `local:///x`). Also drops one
/// leading `/`.
///
/// imgproxy matches the scheme with a greedy `^(\S+):/([^/])`, which also
/// rewrites a later `…/a:/b` inside the URL; we only repair a real scheme.
/// We also accept lower-case `%3a`.
pub(crate) fn redenormalize(path: &str) -> Cow<'_, str> {
    let (options, plain) = if let Some(p) = path.strip_prefix("plain/") {
        ("", Some(p))
    } else if let Some(i) = path.find("/plain/") {
        (&path[..i], Some(&path[i + "/plain/".len()..]))
    } else {
        (path, None)
    };
    let needs_colon = options.contains("%3A") || options.contains("%3a");
    let scheme_fix = plain.and_then(broken_scheme);
    if !needs_colon && scheme_fix.is_none() {
        return Cow::Borrowed(path.strip_prefix('/').unwrap_or(path));
    }
    let mut out = String::with_capacity(path.len() + 2);
    if needs_colon {
        out.push_str(&options.replace("%3A", ":").replace("%3a", ":"));
    } else {
        out.push_str(options);
    }
    if let Some(plain) = plain {
        out.push_str("/plain/");
        match scheme_fix {
            Some((scheme_len, local)) => {
                out.push_str(&plain[..scheme_len]);
                out.push_str(if local { ":///" } else { "://" });
                out.push_str(&plain[scheme_len + 2..]);
            }
            None => out.push_str(plain),
        }
    }
    match out.strip_prefix('/') {
        Some(s) => Cow::Owned(s.to_owned()),
        None => Cow::Owned(out),
    }
}

/// `Some((len, is_local))` when `s` starts with `scheme:/X`, X not `/`.
fn broken_scheme(s: &str) -> Option<(usize, bool)> {
    let len = scheme_len(s)?;
    let rest = &s.as_bytes()[len..];
    if rest.len() >= 3 && rest[0] == b':' && rest[1] == b'/' && rest[2] != b'/' {
        Some((len, s[..len].eq_ignore_ascii_case("local")))
    } else {
        None
    }
}

/// Length of an RFC 3986 scheme at the start of `s` (followed by `:`).
pub(crate) fn scheme_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let len = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    (b[len] == b':').then_some(len)
}

/// Decodes the source parts into the source URL and the optional extension.
pub(crate) fn decode_source(
    parts: &[&str],
    includes_filename: bool,
) -> Result<(String, Option<String>), UrlError> {
    match parts {
        [] => Err(UrlError::EmptySourceUrl),
        ["plain", rest @ ..] if !rest.is_empty() => decode_plain(rest),
        _ => decode_base64(parts, includes_filename),
    }
}

/// Splits `url<sep>ext`; more than one separator is an error, an empty
/// extension means none (imgproxy's rule for both source forms).
fn split_ext(joined: &str, sep: char) -> Result<(&str, Option<String>), UrlError> {
    let mut it = joined.splitn(3, sep);
    let url = it.next().unwrap_or("");
    let ext = it.next();
    if it.next().is_some() {
        return Err(UrlError::MultipleFormats(echo(joined)));
    }
    if url.is_empty() {
        return Err(UrlError::EmptySourceUrl);
    }
    Ok((url, ext.filter(|e| !e.is_empty()).map(str::to_owned)))
}

fn decode_plain(parts: &[&str]) -> Result<(String, Option<String>), UrlError> {
    let joined = parts.join("/");
    let (encoded, ext) = split_ext(&joined, '@')?;
    let bytes =
        percent_decode(encoded).ok_or_else(|| UrlError::InvalidSourceEncoding(echo(encoded)))?;
    let url =
        String::from_utf8(bytes).map_err(|_| UrlError::InvalidSourceEncoding(echo(encoded)))?;
    Ok((url, ext))
}

fn decode_base64(
    parts: &[&str],
    includes_filename: bool,
) -> Result<(String, Option<String>), UrlError> {
    let parts = if includes_filename && parts.len() > 1 {
        &parts[..parts.len() - 1]
    } else {
        parts
    };
    let joined = parts.concat();
    let (encoded, ext) = split_ext(&joined, '.')?;
    let bytes = BASE64_LENIENT
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| UrlError::InvalidSourceEncoding(echo(encoded)))?;
    let url =
        String::from_utf8(bytes).map_err(|_| UrlError::InvalidSourceEncoding(echo(encoded)))?;
    Ok((url, ext))
}

/// Strict `%XX` decoding (Go's `url.PathUnescape`): a stray `%` is an error,
/// `+` stays `+`.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redenormalize_cases_from_imgproxy() {
        let cases = [
            (
                "plain/http:/example.com/image.jpg",
                "plain/http://example.com/image.jpg",
            ),
            (
                "plain/https:/example.com/image.jpg",
                "plain/https://example.com/image.jpg",
            ),
            ("plain/local:/image.jpg", "plain/local:///image.jpg"),
            (
                "/rs:fill:300:200/plain/http:/example.com/image.jpg",
                "rs:fill:300:200/plain/http://example.com/image.jpg",
            ),
            (
                "/plain/http://example.com/image.jpg",
                "plain/http://example.com/image.jpg",
            ),
            (
                "/rs:fill:300:200/plain/example.com/image.jpg",
                "rs:fill:300:200/plain/example.com/image.jpg",
            ),
            ("", ""),
            ("/", ""),
            (
                "/http:/example.com/image.jpg",
                "http:/example.com/image.jpg",
            ),
            ("/plain/http:", "plain/http:"),
            ("/plain/http:/test", "plain/http://test"),
            (
                "rs%3Afill%3A300%3A200/plain/https://e.com/i.jpg",
                "rs:fill:300:200/plain/https://e.com/i.jpg",
            ),
            ("rs%3Afill%3A300%3A200/abc/abc", "rs:fill:300:200/abc/abc"),
            ("rs%3afill/abc", "rs:fill/abc"),
            // Our difference: a later ":/" inside the URL is left alone.
            ("plain/http://e.com/a:/b", "plain/http://e.com/a:/b"),
        ];
        for (input, want) in cases {
            assert_eq!(redenormalize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn split_signature_cases() {
        let (sig, rest) =
            split_signature("/sig/rs:fill:300:200/plain/http://e.com/i.jpg?a=1").unwrap();
        assert_eq!(
            (sig, rest.as_ref()),
            ("sig", "rs:fill:300:200/plain/http://e.com/i.jpg")
        );
        for bad in ["/", "", "/only", "//x", "/sig/"] {
            assert!(split_signature(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%20b+c").unwrap(), b"a b+c");
        assert!(percent_decode("100%").is_none());
        assert!(percent_decode("%zz").is_none());
        assert!(percent_decode("%4").is_none());
    }

    #[test]
    fn plain_and_base64_sources() {
        assert_eq!(
            decode_source(&["plain", "http:", "", "e.com", "a.jpg@png"], false).unwrap(),
            ("http://e.com/a.jpg".to_owned(), Some("png".to_owned()))
        );
        assert_eq!(
            decode_source(&["plain", "http:", "", "e.com", "a.jpg@"], false).unwrap(),
            ("http://e.com/a.jpg".to_owned(), None)
        );
        assert!(matches!(
            decode_source(&["plain", "a@b@c"], false),
            Err(UrlError::MultipleFormats(_))
        ));
        assert!(matches!(
            decode_source(&["plain", "@png"], false),
            Err(UrlError::EmptySourceUrl)
        ));
        assert!(matches!(
            decode_source(&[], false),
            Err(UrlError::EmptySourceUrl)
        ));
        assert_eq!(
            decode_source(&["aHR0cDovL2U", "uY29tL2EuanBn.webp"], false).unwrap(),
            ("http://e.com/a.jpg".to_owned(), Some("webp".to_owned()))
        );
        assert_eq!(
            decode_source(&["aHR0cDovL2UuY29tL2EuanBn==", "seo.jpg"], true).unwrap(),
            ("http://e.com/a.jpg".to_owned(), None)
        );
        assert!(matches!(
            decode_source(&["aHR0cDovL2U.uY29t.png"], false),
            Err(UrlError::MultipleFormats(_))
        ));
        assert!(matches!(
            decode_source(&["!!!"], false),
            Err(UrlError::InvalidSourceEncoding(_))
        ));
    }
}
