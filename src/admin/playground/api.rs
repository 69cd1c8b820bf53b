//! The playground's JSON endpoints (`/playground/api/…`). Every answer is JSON; a bad query
//! parameter gets a 400 saying which and why, an unknown site or route a 404.

use std::collections::HashMap;
use std::time::Duration;

use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::probe::Prober;
use super::{listing, public_site};
use crate::admin::form::decode;
use crate::admin::sign::Signer;
use crate::config::{Config, ImageRoute, Origin, Route, RouteKind, Site};

type Answer = (StatusCode, Value);

/// Dispatches `name` (the path after `/playground/api/`).
pub(super) async fn handle(
    name: &str,
    query: &str,
    config: &Config,
    token_given: bool,
    prober: &Prober,
) -> Answer {
    let result = match name {
        "config" => params(query, &[]).map(|_| site_list(config, token_given)),
        "images" => images(query, config).await,
        "sign" => sign(query, config),
        "probe" => probe(query, config, prober).await,
        _ => Err(fail(
            StatusCode::NOT_FOUND,
            format!("no endpoint {name:?}: config, images, sign, probe"),
        )),
    };
    result.unwrap_or_else(|e| e)
}

pub(super) fn json(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let mut text = serde_json::to_vec(body).unwrap_or_default();
    text.push(b'\n');
    super::respond(
        status,
        "application/json",
        text,
        &[(
            http::header::CONTENT_SECURITY_POLICY,
            super::ASSET_CSP.into(),
        )],
    )
}

pub(super) fn error(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    json(status, &json!({ "error": message }))
}

fn fail(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, json!({ "error": message.into() }))
}

fn bad(message: impl Into<String>) -> Answer {
    fail(StatusCode::BAD_REQUEST, message)
}

/// The query's parameters; each of `allowed` at most once, nothing else.
fn params(query: &str, allowed: &[&str]) -> Result<HashMap<String, String>, Answer> {
    let mut out = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name =
            decode(k).ok_or_else(|| bad("a parameter name is not valid percent-encoding"))?;
        if !allowed.contains(&name.as_str()) {
            let expected = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(bad(format!(
                "unknown parameter {:?} (expected: {expected})",
                truncate(&name)
            )));
        }
        let value = decode(v)
            .ok_or_else(|| bad(format!("{name}: the value is not valid percent-encoding")))?;
        if out.insert(name.clone(), value).is_some() {
            return Err(bad(format!("{name} is given twice")));
        }
    }
    Ok(out)
}

fn required<'a>(p: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Answer> {
    match p.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(format!("{name} is required"))),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The site and image route named by `site=` and `route=`.
fn image_route<'c>(
    config: &'c Config,
    p: &HashMap<String, String>,
) -> Result<(&'c Site, &'c Route, &'c ImageRoute), Answer> {
    let site_name = required(p, "site")?;
    let prefix = required(p, "route")?;
    let site = config
        .sites
        .iter()
        .find(|s| s.name == site_name)
        .ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                format!("no site {:?}", truncate(site_name)),
            )
        })?;
    let route = site.routes.iter().find(|r| r.prefix == prefix);
    match route {
        Some(
            r @ Route {
                kind: RouteKind::Imgproxy(image),
                ..
            },
        ) => Ok((site, r, image)),
        _ => Err(fail(
            StatusCode::NOT_FOUND,
            format!(
                "no imgproxy route {:?} on site {:?}",
                truncate(prefix),
                site.name
            ),
        )),
    }
}

/// How the playground signs a route's URLs: with the newest key when a token is configured (the
/// page is then behind it), unsigned where the route takes unsigned URLs, else not at all.
fn signing<'a>(config: &Config, image: &'a ImageRoute) -> Result<Signer<'a>, &'static str> {
    let settings = &image.settings;
    match Signer::newest(settings) {
        Some(key) if config.server.admin_token.is_some() => Ok(key),
        _ if settings.allow_unsigned => Ok(Signer::Unsigned),
        _ => Err(
            "this route takes signed URLs only, and signing needs server.admin_token \
             (as GET /sign does)",
        ),
    }
}

#[derive(Serialize)]
struct RouteInfo<'a> {
    prefix: &'a str,
    /// `key`, `unsigned` or `disabled` (see [`signing`]).
    signing: &'static str,
    signing_note: Option<&'static str>,
    signature_size: usize,
    presets: Vec<&'a str>,
    only_presets: bool,
    watermark: bool,
    allowed_options: Option<&'a [String]>,
    auto_webp: bool,
    auto_avif: bool,
    /// The route wants a bearer token: `<img>` cannot send one.
    bearer: bool,
}

fn site_list(config: &Config, token_given: bool) -> Answer {
    let sites: Vec<Value> = config
        .sites
        .iter()
        .filter_map(|site| {
            let routes: Vec<RouteInfo<'_>> = site
                .routes
                .iter()
                .filter_map(|r| match &r.kind {
                    RouteKind::Imgproxy(image) => Some((r, image)),
                    RouteKind::Proxy => None,
                })
                .map(|(r, image)| {
                    let s = &image.settings;
                    let signer = signing(config, image);
                    RouteInfo {
                        prefix: &r.prefix,
                        signing: match signer {
                            Ok(Signer::Key { .. }) => "key",
                            Ok(Signer::Unsigned) => "unsigned",
                            Err(_) => "disabled",
                        },
                        signing_note: signer.err(),
                        signature_size: s.signature_size,
                        presets: s.presets.names().collect(),
                        only_presets: s.only_presets,
                        watermark: image.watermark.is_some(),
                        allowed_options: s.allowed_options.as_deref(),
                        auto_webp: s.auto_webp,
                        auto_avif: s.auto_avif,
                        bearer: !r.auth_tokens.is_empty(),
                    }
                })
                .collect();
            if routes.is_empty() {
                return None;
            }
            let public = public_site(config, site);
            Some(json!({
                "name": site.name,
                "base_url": public.as_ref().map(|p| p.base.clone()),
                "local_root": matches!(site.origin, Origin::Root(_)),
                "routes": routes,
            }))
        })
        .collect();
    let formats: Vec<&str> = config.transform.formats.iter().map(|f| f.name()).collect();
    (
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "token": if config.server.admin_token.is_none() {
                "none"
            } else if token_given {
                "given"
            } else {
                "required"
            },
            "formats": formats,
            "sites": sites,
        }),
    )
}

async fn images(query: &str, config: &Config) -> Result<Answer, Answer> {
    let p = params(query, &["site", "route"])?;
    let (site, _, _) = image_route(config, &p)?;
    let Origin::Root(dir) = &site.origin else {
        return Ok((
            StatusCode::OK,
            json!({ "local_root": false, "images": [], "truncated": false }),
        ));
    };
    let dir = dir.clone();
    let (images, truncated) = tokio::task::spawn_blocking(move || listing::images(&dir))
        .await
        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"))?;
    Ok((
        StatusCode::OK,
        json!({ "local_root": true, "images": images, "truncated": truncated }),
    ))
}

/// `source=` (as it goes after `plain/`, percent-encoded), `options=` (`rs:fill:300:200/g:sm`,
/// may be empty), `query=` (the query API parameters without `sig`, optional).
fn sign(query: &str, config: &Config) -> Result<Answer, Answer> {
    let p = params(query, &["site", "route", "source", "options", "query"])?;
    let (_, route, image) = image_route(config, &p)?;
    let source = required(&p, "source")?;
    if source.contains(['?', '#']) || source.chars().any(char::is_whitespace) {
        return Err(bad(
            "source: percent-encode it as it goes after plain/ (no spaces, ? or #)",
        ));
    }
    let options = p.get("options").map_or("", |o| o.trim_matches('/'));
    let signer = signing(config, image).map_err(|m| fail(StatusCode::FORBIDDEN, m))?;
    let settings = &image.settings;
    let base = route.prefix.trim_end_matches('/');
    let path = if options.is_empty() {
        format!("/plain/{source}")
    } else {
        format!("/{options}/plain/{source}")
    };
    let (signed, request) = signer
        .path(settings, &path)
        .map_err(|e| bad(format!("the URL would be refused: {e}")))?;
    let original = signer
        .path(settings, &format!("/raw:1/plain/{source}"))
        .map(|(s, _)| format!("{base}{s}"));
    let info = signer
        .path(settings, &format!("/plain/{source}"))
        .map(|(s, _)| format!("{base}/info{s}"));
    let (query_url, query_note) = match p.get("query").filter(|q| !q.is_empty()) {
        None => (None, None),
        Some(q) => match signer.query(settings, base, q) {
            Ok((url, r)) if r.canonical == request.canonical => (Some(url), None),
            Ok((_, r)) => (
                None,
                Some(format!(
                    "the query form would mean {} instead of {}",
                    r.canonical, request.canonical
                )),
            ),
            Err(e) => (None, Some(format!("the query form would be refused: {e}"))),
        },
    };
    let key = match signer {
        Signer::Key { .. } => json!({
            "signed": true,
            "key": settings.key_pairs.len(),
            "keys": settings.key_pairs.len(),
            "signature_size": settings.signature_size,
        }),
        Signer::Unsigned => json!({ "signed": false }),
    };
    Ok((
        StatusCode::OK,
        json!({
            "path_url": format!("{base}{signed}"),
            "query_url": query_url,
            "query_note": query_note,
            "original_url": original.as_ref().ok(),
            "original_note": original.as_ref().err().map(|e| e.to_string()),
            "info_url": info.as_ref().ok(),
            "canonical": request.canonical,
            "presets": request.used_presets,
            "signature": key,
        }),
    ))
}

async fn probe(query: &str, config: &Config, prober: &Prober) -> Result<Answer, Answer> {
    let p = params(query, &["site", "route", "url"])?;
    let (site, route, _) = image_route(config, &p)?;
    let url = required(&p, "url")?;
    let base = route.prefix.trim_end_matches('/');
    let under = url
        .strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    if !under {
        return Err(bad(format!(
            "url must be a path under the route, {base}/… or {base}?…"
        )));
    }
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) || url.contains('#') {
        return Err(bad("url: no spaces, control characters or fragment"));
    }
    let public = public_site(config, site);
    let Some((addr, host)) = public
        .as_ref()
        .and_then(|p| p.connect.map(|a| (a, p.host.as_str())))
    else {
        return Err(fail(
            StatusCode::CONFLICT,
            "no plain HTTP listener to look through (server.listen is empty)",
        ));
    };
    let limit = config.transform.timeout + Duration::from_secs(5);
    match prober.get(addr, host, url, limit).await {
        Ok(answer) => Ok((StatusCode::OK, json!(answer))),
        Err(e) => Err(fail(StatusCode::BAD_GATEWAY, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: bool) -> Config {
        let text = format!(
            r#"
[server]
listen = ["0.0.0.0:8080"]
{token}
[[site]]
name = "shop"
hosts = ["shop.test", "*.shop.test"]
[site.origin]
servers = ["127.0.0.1:9"]
[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574"]
salt = ["68656C6C6F"]
presets = {{ thumb = "rs:fill:100:100" }}
[[site.route]]
prefix = "/open"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/"

[[site]]
name = "plain"
hosts = ["plain.test"]
[site.origin]
servers = ["127.0.0.1:9"]
"#,
            token = if token {
                "admin_token = \"a-long-admin-token\""
            } else {
                ""
            }
        );
        crate::config::parse_offline(std::path::Path::new("/tmp/imgforge.toml"), &text)
            .expect("config")
    }

    async fn call(name: &str, query: &str, config: &Config) -> Answer {
        handle(name, query, config, true, &Prober::new()).await
    }

    #[tokio::test]
    async fn bad_parameters_get_a_clear_400() {
        let c = config(true);
        for (name, query, says) in [
            ("images", "", "site is required"),
            ("images", "site=shop", "route is required"),
            (
                "images",
                "site=shop&route=/img&x=1",
                "unknown parameter \"x\"",
            ),
            ("images", "site=%zz&route=/img", "percent-encoding"),
            ("images", "site=shop&site=shop&route=/img", "given twice"),
            ("sign", "site=shop&route=/img", "source is required"),
            (
                "sign",
                "site=shop&route=/img&source=a%20b.jpg",
                "percent-encode",
            ),
            (
                "sign",
                "site=shop&route=/img&source=a.jpg&options=rs:nope",
                "would be refused",
            ),
            (
                "probe",
                "site=shop&route=/img&url=/other",
                "path under the route",
            ),
            (
                "probe",
                "site=shop&route=/img&url=/img/x%0a",
                "control characters",
            ),
            ("config", "x=1", "unknown parameter"),
        ] {
            let (status, body) = call(name, query, &c).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}?{query}: {body}");
            let message = body["error"].as_str().unwrap_or("");
            assert!(message.contains(says), "{name}?{query}: {message}");
        }
        let (status, _) = call("images", "site=nope&route=/img", &c).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call("images", "site=shop&route=/", &c).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a proxy route is no image route"
        );
        let (status, _) = call("nope", "", &c).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn signs_both_forms_with_the_newest_key() {
        let c = config(true);
        let (status, body) = call(
            "sign",
            "site=shop&route=/img&source=photos%2Fa.jpg&options=f%3Awebp%2Frs%3Afit%3A300%3A0&query=url%3Dphotos%252Fa.jpg%26w%3D300%26f%3Dwebp",
            &c,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let path = body["path_url"].as_str().expect("path");
        assert!(
            path.starts_with("/img/") && path.ends_with("/f:webp/rs:fit:300:0/plain/photos/a.jpg")
        );
        assert!(!path.contains("insecure"));
        let query = body["query_url"].as_str().expect("query");
        assert!(
            query.starts_with("/img?url=photos%2Fa.jpg&w=300&f=webp&sig="),
            "{query}"
        );
        assert!(
            body["info_url"]
                .as_str()
                .expect("info")
                .starts_with("/img/info/")
        );
        assert!(
            body["original_url"]
                .as_str()
                .expect("raw")
                .ends_with("/raw:1/plain/photos/a.jpg")
        );
        assert_eq!(body["signature"]["signed"], true);

        // A query form that means something else is not offered as the same URL.
        let (_, body) = call(
            "sign",
            "site=shop&route=/img&source=a.jpg&options=rs%3Afit%3A300%3A0&query=url%3Da.jpg%26w%3D200",
            &c,
        )
        .await;
        assert!(body["query_url"].is_null());
        assert!(
            body["query_note"]
                .as_str()
                .expect("note")
                .contains("instead of")
        );
    }

    #[tokio::test]
    async fn without_a_token_nothing_is_signed() {
        let c = config(false);
        let (status, body) = call("sign", "site=shop&route=/img&source=a.jpg", &c).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(
            "sign",
            "site=shop&route=/open&source=a.jpg&query=url%3Da.jpg",
            &c,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["path_url"], "/open/insecure/plain/a.jpg");
        assert_eq!(body["query_url"], "/open?url=a.jpg");
        let (_, body) = call("config", "", &c).await;
        let routes = body["sites"][0]["routes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let signing = |prefix: &str| {
            routes
                .iter()
                .find(|r| r["prefix"] == prefix)
                .map(|r| r["signing"].clone())
        };
        assert_eq!(signing("/img"), Some(json!("disabled")));
        assert_eq!(signing("/open"), Some(json!("unsigned")));
        assert_eq!(body["sites"][0]["base_url"], "http://shop.test:8080");
        assert_eq!(
            body["sites"].as_array().map(Vec::len),
            Some(1),
            "sites without image routes are left out"
        );
    }

    #[test]
    fn public_sites() {
        let c = config(false);
        let p = public_site(&c, &c.sites[0]).expect("public");
        assert_eq!(p.base, "http://shop.test:8080");
        assert_eq!(p.host, "shop.test:8080");
        assert_eq!(p.connect, Some("127.0.0.1:8080".parse().expect("addr")));
    }
}
