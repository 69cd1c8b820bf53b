//! `GET /playground` on the admin listener: a page where a person picks a site, an image route
//! and a source, composes options with labelled controls, and sees the live preview beside the
//! original, the answer's facts, the source's `/info`, and the URL in both forms (imgproxy path
//! and query API), signed here with the route's newest key, plus a client-library snippet.
//!
//! Everything is in the binary (`assets/`: HTML, CSS and JavaScript, no build step, nothing
//! from a CDN). The page itself holds no secret: it asks the JSON endpoints below.
//!
//! | path | what |
//! |---|---|
//! | `GET /playground` | the page (401 and the token form when a token is set and none was given) |
//! | `GET /playground/app.js`, `/playground/app.css` | the page's script and style (no secrets, open) |
//! | `POST /playground/login` | the token form: a session cookie for the right token, 401 otherwise |
//! | `POST /playground/logout` | ends the session |
//! | `GET /playground/api/config` | sites, image routes, public base URLs, formats |
//! | `GET /playground/api/images?site=&route=` | images of the site's local root |
//! | `GET /playground/api/sign?site=&route=&source=&options=[&query=]` | the URLs, signed |
//! | `GET /playground/api/probe?site=&route=&url=` | one URL through the public listener |
//!
//! Access: with `server.admin_token` set, every path but the script and style needs
//! `Authorization: Bearer TOKEN` (as the other admin endpoints) or the session cookie the token
//! form hands out ([`session`]); without a token the page is open, like `/metrics`, and signs
//! nothing (as `GET /sign`, which is disabled then): routes that take unsigned URLs get unsigned
//! URLs, routes that need a signature say so.
//!
//! Headers: a strict `Content-Security-Policy` (scripts and styles from this origin only, no
//! inline code; images from this origin and the public listener's origins; fetches to this
//! origin only; no framing), `nosniff`, `no-referrer`, `no-store`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Response, StatusCode};
use pingora::protocols::http::ServerSession;

mod api;
mod listing;
mod probe;
mod session;

use crate::config::{Config, HostPattern, Site};
use crate::protect::auth::bearer_matches;
use crate::state::Shared;
use session::Sessions;

const PAGE: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The longest token form accepted.
const MAX_FORM: usize = 4096;

/// The playground's state: the session secret and the probe's connector.
pub(super) struct Playground {
    sessions: Sessions,
    prober: probe::Prober,
}

/// Whether a request may use the playground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No admin token is configured.
    Open,
    /// The token (header) or a live session (cookie) was presented.
    Granted,
    Denied,
}

impl Playground {
    pub(super) fn new() -> Self {
        Self {
            sessions: Sessions::new(),
            prober: probe::Prober::new(),
        }
    }

    fn access(&self, config: &Config, headers: &http::HeaderMap) -> Access {
        let Some(token) = config.server.admin_token.as_deref() else {
            return Access::Open;
        };
        let by_cookie = Sessions::from_headers(headers)
            .is_some_and(|v| self.sessions.valid(v, token, unix_now()));
        if bearer_matches(headers, &[token]) || by_cookie {
            Access::Granted
        } else {
            Access::Denied
        }
    }

    /// Answers one request for `/playground` or a path under it.
    pub(super) async fn serve(
        &self,
        shared: &Shared,
        session: &mut ServerSession,
    ) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        let method = req.method.clone();
        let runtime = shared.runtime.load_full();
        let config = &runtime.config;
        let access = self.access(config, &req.headers);
        let get = method == http::Method::GET;
        let post = method == http::Method::POST;
        match path.as_str() {
            "/playground/app.js" if get => asset("text/javascript; charset=utf-8", SCRIPT),
            "/playground/app.css" if get => asset("text/css; charset=utf-8", STYLE),
            "/playground" | "/playground/" if get => match access {
                Access::Denied => login_page(false),
                _ => {
                    let query = req.uri.query().unwrap_or("");
                    page(config, query)
                }
            },
            "/playground/login" if post => self.login(config, session).await,
            "/playground/logout" if post => redirect(Some(Sessions::clear_cookie())),
            p if p.starts_with("/playground/api/") && get => {
                if access == Access::Denied {
                    return api::error(StatusCode::UNAUTHORIZED, "give the admin token");
                }
                let query = req.uri.query().unwrap_or("").to_string();
                let (status, body) = api::handle(
                    &p["/playground/api/".len()..],
                    &query,
                    config,
                    access == Access::Granted,
                    &self.prober,
                )
                .await;
                api::json(status, &body)
            }
            "/playground" | "/playground/" | "/playground/app.js" | "/playground/app.css" => {
                not_allowed("GET")
            }
            "/playground/login" | "/playground/logout" => not_allowed("POST"),
            p if p.starts_with("/playground/api/") => not_allowed("GET"),
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                b"not found\n".to_vec(),
                &[],
            ),
        }
    }

    /// The token form's target: a session for the right token, the form again otherwise.
    async fn login(&self, config: &Config, session: &mut ServerSession) -> Response<Vec<u8>> {
        let Some(token) = config.server.admin_token.clone() else {
            return redirect(None);
        };
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_FORM => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return respond(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "text/plain; charset=utf-8",
                        b"form too large\n".to_vec(),
                        &[],
                    );
                }
                Ok(None) => break,
                Err(_) => return login_page(true),
            }
        }
        let given = std::str::from_utf8(&body)
            .ok()
            .and_then(|b| super::form::form_value(b, "token"))
            .unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {given}")) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        if !given.is_empty() && bearer_matches(&headers, &[&token]) {
            let cookie = self.sessions.issue(&token, unix_now());
            return redirect(Some(Sessions::set_cookie(&cookie)));
        }
        tracing::warn!("playground login refused: wrong admin token");
        // Guessing is slowed down a little; the admin listener is private anyway.
        tokio::time::sleep(Duration::from_millis(250)).await;
        login_page(true)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a site is reached on the public listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PublicSite {
    /// `http://shop.example.com:8080`: the page's base URL (an origin) for the site.
    pub base: String,
    /// The `Host` header the probe sends (`shop.example.com:8080`).
    pub host: String,
    /// Where the probe connects: the first plain listener, an unspecified address made
    /// loopback. `None` when there is only a TLS listener.
    pub connect: Option<SocketAddr>,
}

/// The public base URL of `site`: its first exact host name (or a name under its first
/// `*.suffix`), else the listener's address, with the first plain listener's port (else the
/// first TLS listener's, as `https`).
pub(super) fn public_site(config: &Config, site: &Site) -> Option<PublicSite> {
    let (scheme, addr, connect) = match (config.server.listen.first(), &config.server.tls) {
        (Some(a), _) => (
            "http",
            *a,
            Some(SocketAddr::new(loopback_if_any(a.ip()), a.port())),
        ),
        (None, Some(tls)) => ("https", *tls.listen.first()?, None),
        (None, None) => return None,
    };
    let name = site
        .hosts
        .iter()
        .find_map(|h| match h {
            HostPattern::Exact(n) => Some(n.clone()),
            HostPattern::Suffix(_) => None,
        })
        .or_else(|| {
            site.hosts.iter().find_map(|h| match h {
                HostPattern::Suffix(s) => Some(format!("www{s}")),
                HostPattern::Exact(_) => None,
            })
        })
        .unwrap_or_else(|| match loopback_if_any(addr.ip()) {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
    let default_port = if scheme == "http" { 80 } else { 443 };
    let host = if addr.port() == default_port {
        name
    } else {
        format!("{name}:{}", addr.port())
    };
    Some(PublicSite {
        base: format!("{scheme}://{host}"),
        host,
        connect,
    })
}

fn loopback_if_any(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `scheme://host[:port]` of a base URL the person typed (`?public=`), if it is one: http or
/// https, a host of letters, digits, `.` and `-` (or a bracketed IPv6 address), an optional
/// port, nothing else (no user, path, query or fragment). It goes into the CSP, so nothing
/// else may.
pub(super) fn public_override(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (ip, after) = v6.split_once(']')?;
        ip.parse::<Ipv6Addr>().ok()?;
        (format!("[{ip}]"), after)
    } else {
        let end = rest.find(':').unwrap_or(rest.len());
        let host = &rest[..end];
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return None;
        }
        (host.to_ascii_lowercase(), &rest[end..])
    };
    let port = match port {
        "" => String::new(),
        p => {
            let digits = p.strip_prefix(':')?;
            let n: u16 = digits.parse().ok()?;
            if n == 0 || digits.len() > 5 {
                return None;
            }
            format!(":{n}")
        }
    };
    Some(format!("{scheme}://{host}{port}"))
}

/// The page's policy: images from this origin and from `origins` (the public listener's).
fn page_csp(origins: &[String]) -> String {
    let mut img = String::from("'self'");
    for o in origins {
        img.push(' ');
        img.push_str(o);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const ASSET_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn page(config: &Config, query: &str) -> Response<Vec<u8>> {
    let mut origins: Vec<String> = config
        .sites
        .iter()
        .filter_map(|s| public_site(config, s))
        .map(|p| p.base)
        .collect();
    if let Some(o) = super::form::form_value(query, "public").and_then(|p| public_override(&p)) {
        origins.push(o);
    }
    origins.sort();
    origins.dedup();
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        PAGE.as_bytes().to_vec(),
        &[(http::header::CONTENT_SECURITY_POLICY, page_csp(&origins))],
    )
}

fn login_page(wrong: bool) -> Response<Vec<u8>> {
    let message = if wrong {
        "That is not the admin token."
    } else {
        "This playground signs URLs: give the admin token (server.admin_token)."
    };
    let body = LOGIN.replace("{{message}}", message);
    let mut resp = respond(
        StatusCode::UNAUTHORIZED,
        "text/html; charset=utf-8",
        body.into_bytes(),
        &[(http::header::CONTENT_SECURITY_POLICY, LOGIN_CSP.into())],
    );
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"imgforge admin\""),
    );
    resp
}

fn asset(content_type: &str, text: &str) -> Response<Vec<u8>> {
    respond(
        StatusCode::OK,
        content_type,
        text.as_bytes().to_vec(),
        &[(http::header::CONTENT_SECURITY_POLICY, ASSET_CSP.into())],
    )
}

/// 303 to the page, with a cookie to set or clear.
fn redirect(cookie: Option<String>) -> Response<Vec<u8>> {
    let mut extra = vec![(http::header::LOCATION, "/playground".to_string())];
    if let Some(c) = cookie {
        extra.push((http::header::SET_COOKIE, c));
    }
    respond(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        b"see /playground\n".to_vec(),
        &extra,
    )
}

fn not_allowed(allow: &'static str) -> Response<Vec<u8>> {
    let mut resp = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        format!("use {allow}\n").into_bytes(),
        &[],
    );
    resp.headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A complete answer with the headers every playground answer carries.
pub(super) fn respond(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
    extra: &[(HeaderName, String)],
) -> Response<Vec<u8>> {
    let mut resp = super::reply(status, content_type, body);
    let h = resp.headers_mut();
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.append(name.clone(), v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_overrides_are_origins_only() {
        assert_eq!(
            public_override("https://CDN.example.com/").as_deref(),
            Some("https://cdn.example.com")
        );
        assert_eq!(
            public_override("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            public_override("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in [
            "",
            "cdn.example.com",
            "ftp://cdn.example.com",
            "https://cdn.example.com/images",
            "https://user@cdn.example.com",
            "https://cdn.example.com:0",
            "https://cdn.example.com:99999",
            "https://cdn.example.com; script-src *",
            "https://cdn.example.com?x",
            "https://[zz]:80",
            "javascript:alert(1)",
        ] {
            assert_eq!(public_override(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_page_policy_allows_no_inline_code() {
        let csp = page_csp(&["http://shop.test:8080".into()]);
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("img-src 'self' http://shop.test:8080;"));
        assert!(!csp.contains("unsafe"));
        assert!(!LOGIN_CSP.contains("script-src"));
    }

    #[test]
    fn the_page_and_its_code_are_separate_files() {
        assert!(PAGE.contains("src=\"/playground/app.js\""));
        assert!(!PAGE.contains("<script>"), "no inline script");
        assert!(!PAGE.contains("style=\""), "no inline style");
        assert!(!PAGE.contains("<style"), "no inline style");
        assert!(LOGIN.contains("{{message}}"));
        assert!(!LOGIN.contains("<script"));
        for text in [PAGE, LOGIN, SCRIPT, STYLE] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "nothing from outside"
            );
        }
    }
}
