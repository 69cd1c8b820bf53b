//! Source URL classification and normalisation.
//!
//! Three kinds are accepted: a path on the site's own origin, an absolute
//! http(s) URL, and `local:///path` under a local root. Paths are normalised
//! here, once, so that the fetchers behind us never see `..`, NUL bytes or
//! backslashes, and so that equivalent spellings share a cache key.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::error::{UrlError, echo};
use super::path::{percent_decode, scheme_len};
use super::settings::RouteSettings;

/// Where the source image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// Path (plus optional `?query`) on the site's origin. Starts with `/`,
    /// percent-encoded as it will go on the wire, dot-segments resolved, empty
    /// segments collapsed. Not subject to `allowed_sources`.
    Relative(String),
    /// Absolute `http`/`https` URL, valid as an [`http::Uri`], fragment removed.
    Http(String),
    /// Decoded path below the route's local root: starts with `/`, no `.`/`..`
    /// segments, no NUL or backslash. Join it to the root without decoding again.
    Local(String),
}

impl Source {
    /// The source as a URL string (`local:///…` for local files), as matched by
    /// `allowed_sources` and written into the canonical form.
    pub fn to_url(&self) -> Cow<'_, str> {
        match self {
            Source::Relative(p) | Source::Http(p) => Cow::Borrowed(p),
            Source::Local(p) => {
                let mut s = String::with_capacity(p.len() + 8);
                s.push_str("local://");
                escape(p, &mut s, |b| {
                    needs_uri_escape(b) || matches!(b, b'%' | b'?' | b'#')
                });
                Cow::Owned(s)
            }
        }
    }
}

/// Bytes that may not appear raw in an HTTP request target.
fn needs_uri_escape(b: u8) -> bool {
    b <= b' '
        || b >= 0x7f
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

/// Percent-encodes the bytes selected by `pred`, and every non-ASCII byte
/// (escaping only part of a UTF-8 sequence would leave invalid text).
pub(crate) fn escape(s: &str, out: &mut String, pred: impl Fn(u8) -> bool) {
    for b in s.bytes() {
        if !b.is_ascii() || pred(b) {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
}

/// Classifies a decoded source URL and applies the route's source rules.
pub(crate) fn classify(url: &str, settings: &RouteSettings) -> Result<Source, UrlError> {
    if url.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    let source = match scheme_len(url) {
        None => relative(url)?,
        Some(n) => {
            let scheme = url[..n].to_ascii_lowercase();
            match scheme.as_str() {
                "http" | "https" => http(url, n)?,
                "local" => local(url, n, settings)?,
                _ => return Err(UrlError::UnsupportedSourceScheme(echo(&scheme))),
            }
        }
    };
    if !matches!(source, Source::Relative(_)) && !settings.allowed_sources.is_empty() {
        let s = source.to_url();
        if !settings.allowed_sources.iter().any(|p| p.matches(&s)) {
            return Err(UrlError::SourceNotAllowed(echo(&s)));
        }
    }
    Ok(source)
}

fn http(url: &str, scheme_len: usize) -> Result<Source, UrlError> {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let rest = &url[scheme_len + 1..];
    let authority = rest
        .strip_prefix("//")
        .map(|r| r.split(['/', '?']).next().unwrap_or(""))
        .unwrap_or("");
    if authority.is_empty() {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    let mut escaped = String::with_capacity(url.len() + 8);
    escape(url, &mut escaped, needs_uri_escape);
    let uri =
        http::Uri::try_from(escaped.as_str()).map_err(|_| UrlError::InvalidSource(echo(url)))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    Ok(Source::Http(escaped))
}

fn local(url: &str, scheme_len: usize, settings: &RouteSettings) -> Result<Source, UrlError> {
    if !settings.allow_local_sources {
        return Err(UrlError::SourceNotAllowed(echo(url)));
    }
    // Only `local:///path`: a host part has no meaning for a local root and
    // would hide the real path from the checks below.
    let Some(path) = url[scheme_len + 1..].strip_prefix("///") else {
        return Err(UrlError::InvalidSource(echo(url)));
    };
    // Like Go's url.Parse in imgproxy's local transport: query and fragment are
    // cut before the path is decoded.
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path).ok_or_else(|| UrlError::InvalidSourceEncoding(echo(url)))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| UrlError::InvalidSourceEncoding(echo(url)))?;
    if decoded.contains(['\0', '\\']) {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        push_segment(&mut segments, seg, url)?;
    }
    if segments.is_empty() {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    Ok(Source::Local(format!("/{}", segments.join("/"))))
}

/// Resolves one path segment: `.` and empty are dropped, `..` pops and may
/// not climb above the root.
fn push_segment<'a>(segments: &mut Vec<&'a str>, seg: &'a str, url: &str) -> Result<(), UrlError> {
    match seg {
        "" | "." => {}
        ".." => {
            if segments.pop().is_none() {
                return Err(UrlError::InvalidSource(echo(url)));
            }
        }
        s => segments.push(s),
    }
    Ok(())
}

fn relative(url: &str) -> Result<Source, UrlError> {
    // `//host/x` would be read as a host by any URL joiner downstream.
    if url.starts_with("//") || url.contains('\\') {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let mut segments: Vec<&str> = Vec::new();
    for raw in path.split('/') {
        // Check the decoded form too: an origin that is a local directory will
        // decode `%2e%2e` into `..`.
        let decoded =
            percent_decode(raw).ok_or_else(|| UrlError::InvalidSourceEncoding(echo(url)))?;
        if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(UrlError::InvalidSource(echo(url)));
        }
        let seg = match decoded.as_slice() {
            b"." => ".",
            b".." => "..",
            _ => raw,
        };
        push_segment(&mut segments, seg, url)?;
    }
    if segments.is_empty() {
        return Err(UrlError::InvalidSource(echo(url)));
    }
    let mut out = String::with_capacity(url.len() + 1);
    for seg in &segments {
        out.push('/');
        escape(seg, &mut out, needs_uri_escape);
    }
    if let Some(q) = query {
        out.push('?');
        escape(q, &mut out, needs_uri_escape);
    }
    Ok(Source::Relative(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SourcePattern;

    fn settings() -> RouteSettings {
        RouteSettings {
            allow_local_sources: true,
            ..RouteSettings::default()
        }
    }

    #[test]
    fn relative_sources_are_normalised() {
        let s = settings();
        let cases = [
            ("images/a.jpg", "/images/a.jpg"),
            ("/images/./x/../a.jpg", "/images/a.jpg"),
            ("/a b.jpg?v=1 2", "/a%20b.jpg?v=1%202"),
            ("/a//b.jpg", "/a/b.jpg"),
            ("/caf%C3%A9.jpg", "/caf%C3%A9.jpg"),
        ];
        for (input, want) in cases {
            assert_eq!(
                classify(input, &s),
                Ok(Source::Relative(want.into())),
                "{input}"
            );
        }
        for bad in [
            "/../etc/passwd",
            "//evil.com/x",
            "/a%2e%2e/../../x",
            "/a%2fb",
            "/a\\b",
            "/",
            "/x%00",
        ] {
            assert!(classify(bad, &s).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_sources() {
        let s = settings();
        assert_eq!(
            classify("local:///a/b.jpg", &s),
            Ok(Source::Local("/a/b.jpg".into()))
        );
        assert_eq!(
            classify("local:///a%20b.jpg?x", &s),
            Ok(Source::Local("/a b.jpg".into()))
        );
        assert_eq!(
            classify("local:///a/../b.jpg", &s),
            Ok(Source::Local("/b.jpg".into()))
        );
        for bad in [
            "local:///../x",
            "local:///a/%2e%2e/%2e%2e/x",
            "local://host/x",
            "local:///",
            "local:///a%00b",
            "local:///a%5Cb",
        ] {
            assert!(classify(bad, &s).is_err(), "{bad}");
        }
        let off = RouteSettings::default();
        assert!(matches!(
            classify("local:///a.jpg", &off),
            Err(UrlError::SourceNotAllowed(_))
        ));
    }

    #[test]
    fn http_sources_and_schemes() {
        let s = settings();
        assert_eq!(
            classify("https://e.com/a b.jpg#frag", &s),
            Ok(Source::Http("https://e.com/a%20b.jpg".into()))
        );
        assert!(matches!(
            classify("s3://bucket/a.jpg", &s),
            Err(UrlError::UnsupportedSourceScheme(_))
        ));
        assert!(matches!(
            classify("data:image/png;base64,xx", &s),
            Err(UrlError::UnsupportedSourceScheme(_))
        ));
        assert!(classify("http:///a.jpg", &s).is_err());
        assert!(classify("http:/a.jpg", &s).is_err());
    }

    #[test]
    fn allowed_sources_apply_to_absolute_only() {
        let s = RouteSettings {
            allowed_sources: vec![SourcePattern::new("https://*.example.com/").unwrap()],
            ..settings()
        };
        assert!(classify("https://img.example.com/a.jpg", &s).is_ok());
        assert!(classify("https://example.com.evil.net/a.jpg", &s).is_err());
        assert!(classify("local:///a.jpg", &s).is_err());
        assert!(classify("/relative.jpg", &s).is_ok());
    }
}
