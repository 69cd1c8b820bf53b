//! The query API: `PREFIX?url=SOURCE&w=400&h=300&f=webp&q=80&t=fill&sig=SIGNATURE`, for clients
//! that would rather build a query string than an imgproxy path. Pure.
//!
//! A query is translated into the equivalent imgproxy options and source, then goes through the
//! same option rules, allowed sources, presets (`default`) and canonical form as a path URL, so
//! `?url=a.jpg&w=300&f=webp` and `/rs:fit:300:0/plain/a.jpg@webp` share one cache entry.
//!
//! Signature: `sig = Base64url(HMAC-SHA256(key, salt ‖ "?" ‖ Q))[..signature_size]`, where `Q`
//! is the query string exactly as sent, up to (not including) `&sig=`; `sig` must come last.
//! The `?` keeps query signatures and path signatures (which cover text starting with `/`)
//! from ever being interchangeable.

use super::error::UrlError;
use super::path::percent_decode;

/// Parameters of the query API, in the order they are documented.
pub const PARAMETERS: [&str; 7] = ["url", "w", "h", "f", "q", "t", "sig"];

/// A query translated into imgproxy terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// The text the signature covers: `?` and the query before `&sig=`.
    pub signed_text: String,
    /// The `sig` parameter, if present.
    pub signature: Option<String>,
    /// The equivalent imgproxy path after the signature segment (no leading `/`).
    pub path: String,
}

/// Whether a request to the route's own prefix is a query API request (it carries `url=`).
pub fn is_query_request(rest_of_path: &str, query: Option<&str>) -> bool {
    matches!(rest_of_path, "" | "/")
        && query.is_some_and(|q| q.split('&').any(|p| p.starts_with("url=")))
}

/// Translates a query string (without the `?`).
pub fn translate(query: &str) -> Result<QueryRequest, UrlError> {
    let (unsigned, signature) = match query.rfind("&sig=") {
        Some(i) => (&query[..i], Some(&query[i + 5..])),
        None => match query.strip_prefix("sig=") {
            Some(_) => return Err(invalid("sig must be the last parameter, after url")),
            None => (query, None),
        },
    };
    if signature.is_some_and(|s| s.contains('&')) {
        return Err(invalid("sig must be the last parameter"));
    }
    let mut values: [Option<String>; 6] = Default::default();
    for pair in unsigned.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(i) = PARAMETERS[..6].iter().position(|p| *p == name) else {
            return Err(invalid(&format!(
                "unknown query parameter {:?} (expected one of url, w, h, f, q, t, sig)",
                truncate(name)
            )));
        };
        if values[i].is_some() {
            return Err(invalid(&format!("query parameter {name} given twice")));
        }
        values[i] = Some(form_decode(raw)?);
    }
    let [url, w, h, f, q, t] = values;
    let url = url
        .filter(|u| !u.is_empty())
        .ok_or(UrlError::EmptySourceUrl)?;
    let mut path = String::with_capacity(url.len() * 3 + 48);
    if w.is_some() || h.is_some() || t.is_some() {
        let t = t.as_deref().unwrap_or("fit");
        let w = w.as_deref().unwrap_or("0");
        let h = h.as_deref().unwrap_or("0");
        for v in [t, w, h] {
            // A `:` or `/` would let a value smuggle in further options.
            if v.contains([':', '/']) {
                return Err(invalid(&format!("bad query value {:?}", truncate(v))));
            }
        }
        path.push_str(&format!("rs:{t}:{w}:{h}/"));
    }
    for (option, value) in [("q", q), ("f", f)] {
        if let Some(v) = value {
            if v.is_empty() || v.contains([':', '/']) {
                return Err(invalid(&format!("bad query value {:?}", truncate(&v))));
            }
            path.push_str(&format!("{option}:{v}/"));
        }
    }
    path.push_str("plain/");
    encode_source(&url, &mut path);
    Ok(QueryRequest {
        signed_text: format!("?{unsigned}"),
        signature: signature.map(str::to_owned),
        path,
    })
}

/// Builds `PREFIX?QUERY&sig=…` from a query without `sig` and the signature `sign` returns for
/// the signed text. Used by the admin `/sign` endpoint and by tests.
pub fn signed_url(prefix: &str, query: &str, sign: impl Fn(&str) -> String) -> String {
    let sig = sign(&format!("?{query}"));
    format!("{}?{query}&sig={sig}", prefix.trim_end_matches('/'))
}

fn invalid(message: &str) -> UrlError {
    UrlError::InvalidPath(message.to_owned())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `application/x-www-form-urlencoded` value: `+` is a space, `%XX` strict.
fn form_decode(raw: &str) -> Result<String, UrlError> {
    let spaced = raw.replace('+', " ");
    percent_decode(&spaced)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| UrlError::InvalidSourceEncoding(truncate(raw).to_owned()))
}

/// Percent-encodes a source for a `plain/` path: everything but unreserved characters and `/`,
/// so `@`, `:`, `?` and `%` in the URL can never be read as path syntax.
fn encode_source(url: &str, out: &mut String) {
    for b in url.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_every_parameter() {
        let r = translate("url=https%3A%2F%2Fcdn.test%2Fa%20b.jpg&w=300&h=200&t=fill&q=75&f=webp")
            .expect("ok");
        assert_eq!(
            r.path,
            "rs:fill:300:200/q:75/f:webp/plain/https%3A//cdn.test/a%20b.jpg"
        );
        assert_eq!(r.signature, None);
        assert!(r.signed_text.starts_with("?url="));
    }

    #[test]
    fn defaults_and_relative_sources() {
        assert_eq!(
            translate("url=photos/a.jpg").expect("ok").path,
            "plain/photos/a.jpg"
        );
        assert_eq!(
            translate("w=300&url=a.jpg").expect("ok").path,
            "rs:fit:300:0/plain/a.jpg"
        );
        assert_eq!(
            translate("url=a+b%40c.jpg&h=10").expect("ok").path,
            "rs:fit:0:10/plain/a%20b%40c.jpg"
        );
    }

    #[test]
    fn signature_is_last_and_covers_the_rest() {
        let r = translate("url=a.jpg&w=300&sig=abc_-").expect("ok");
        assert_eq!(r.signature.as_deref(), Some("abc_-"));
        assert_eq!(r.signed_text, "?url=a.jpg&w=300");
        assert!(translate("url=a.jpg&sig=abc&w=300").is_err());
        assert!(translate("sig=abc&url=a.jpg").is_err());
    }

    #[test]
    fn refuses_unknown_duplicate_and_smuggling() {
        for bad in [
            "url=a.jpg&width=300",
            "url=a.jpg&w=1&w=2",
            "url=a.jpg&w=300:bl:10",
            "url=a.jpg&f=webp/plain",
            "url=a.jpg&t=fill%3A1",
            "url=a.jpg&q=",
            "url=%zz",
            "url=",
            "w=300",
            "url=%FF",
        ] {
            assert!(translate(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn detects_query_requests() {
        assert!(is_query_request("", Some("url=a.jpg")));
        assert!(is_query_request("/", Some("w=1&url=a.jpg")));
        assert!(!is_query_request(
            "/sig/rs:fit:1/plain/a.jpg",
            Some("url=x")
        ));
        assert!(!is_query_request("", None));
        assert!(!is_query_request("", Some("curl=1")));
    }

    #[test]
    fn signed_url_round_trips() {
        let url = signed_url("/img/", "url=a.jpg&w=300", |t| format!("S{}", t.len()));
        assert_eq!(url, "/img?url=a.jpg&w=300&sig=S16");
        let r = translate(url.split_once('?').expect("query").1).expect("ok");
        assert_eq!(r.signature.as_deref(), Some("S16"));
        assert_eq!(r.signed_text.len(), 16);
    }
}
