//! HTTP downloads through Pingora's connector (the same connection pool, TLS and timeouts as the
//! proxy), with manual redirects so every hop is checked by the SSRF guard.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::upstreams::peer::Peer;

use super::{FetchError, FetchLimits, Fetched, Target};
use crate::protect::ssrf;

/// Downloads sources; one per process (it owns the connection pool).
pub struct Fetcher {
    connector: Connector,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    /// A fetcher with its own connection pool.
    pub fn new() -> Self {
        Self {
            connector: Connector::new(None),
        }
    }

    /// Fetches `target` within `limits`.
    pub async fn fetch(
        &self,
        target: Target<'_>,
        limits: FetchLimits,
        request_id: &str,
    ) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(limits.timeout, self.fetch_inner(target, limits, request_id))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        }
    }

    async fn fetch_inner(
        &self,
        target: Target<'_>,
        limits: FetchLimits,
        request_id: &str,
    ) -> Result<Fetched, FetchError> {
        match target {
            Target::Local { root, path } => {
                let f = root
                    .read(path, limits.max_bytes)
                    .await
                    .map_err(|e| match e.status() {
                        413 => FetchError::TooLarge {
                            limit: limits.max_bytes,
                        },
                        404 => FetchError::NotFound,
                        _ => FetchError::Local(e),
                    })?;
                Ok(Fetched {
                    bytes: f.bytes,
                    etag: Some(f.etag),
                    last_modified: Some(httpdate::fmt_http_date(f.last_modified)),
                    content_type: Some(f.content_type),
                    cache_control: None,
                    from: Some("local".into()),
                })
            }
            Target::Pool { pool, path, host } => {
                let settings = pool.settings();
                let mut tried = Vec::new();
                let mut last_err = FetchError::Unreachable("no origin server".into());
                for _ in 0..=settings.retries {
                    let Some(addr) = pool.select(path.as_bytes(), &tried) else {
                        break;
                    };
                    tried.push(addr);
                    let peer = pool.peer(addr);
                    let host = settings
                        .host_header
                        .as_deref()
                        .or(host)
                        .unwrap_or("localhost");
                    let mut extra: Vec<(String, String)> = settings
                        .request_headers
                        .iter()
                        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                        .collect();
                    extra.push(("X-Request-Id".into(), request_id.into()));
                    match self.get(&peer, host, path, &extra, limits.max_bytes).await {
                        Ok(Response::Body(mut f)) => {
                            f.from = Some(addr.to_string());
                            return Ok(f);
                        }
                        Ok(Response::Redirect(_)) => return Err(FetchError::OriginStatus(302)),
                        // Only a failed connect is retried: the origin may have seen a request otherwise.
                        Err(Failure::Connect(e)) => last_err = FetchError::Unreachable(e),
                        Err(Failure::Other(e)) => return Err(e),
                    }
                }
                Err(last_err)
            }
            Target::Url { url, policy } => {
                let mut current = url.to_string();
                for _ in 0..=limits.max_redirects {
                    let (peer, host, path) = resolve(&current, policy).await?;
                    match self
                        .get(
                            &peer,
                            &host,
                            &path,
                            &[("X-Request-Id".into(), request_id.into())],
                            limits.max_bytes,
                        )
                        .await
                    {
                        Ok(Response::Body(mut f)) => {
                            f.from = Some(peer.address().to_string());
                            return Ok(f);
                        }
                        Ok(Response::Redirect(location)) => current = join(&current, &location)?,
                        Err(Failure::Connect(e)) => return Err(FetchError::Unreachable(e)),
                        Err(Failure::Other(e)) => return Err(e),
                    }
                }
                Err(FetchError::TooManyRedirects)
            }
        }
    }

    async fn get(
        &self,
        peer: &HttpPeer,
        host: &str,
        path: &str,
        extra: &[(String, String)],
        max_bytes: u64,
    ) -> Result<Response, Failure> {
        let (mut session, _reused) = self
            .connector
            .get_http_session(peer)
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let other = |e: Box<pingora::Error>| Failure::Other(classify(&e));
        let mut req = RequestHeader::build("GET", path.as_bytes(), Some(4)).map_err(other)?;
        req.insert_header("Host", host).map_err(other)?;
        req.insert_header(
            "User-Agent",
            concat!("imgforge/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(other)?;
        req.insert_header("Accept", "image/*,*/*;q=0.8")
            .map_err(other)?;
        for (k, v) in extra {
            req.insert_header(k.clone(), v.as_str()).map_err(other)?;
        }
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(other)?;
        session.finish_request_body().await.map_err(other)?;
        session.read_response_header().await.map_err(other)?;
        let Some(resp) = session.response_header() else {
            return Err(Failure::Other(FetchError::Unreachable(
                "no response header".into(),
            )));
        };
        let status = resp.status.as_u16();
        let header = |name: &str| {
            resp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if (300..400).contains(&status) && status != 304 {
            return match header("location") {
                Some(l) => Ok(Response::Redirect(l)),
                None => Err(Failure::Other(FetchError::OriginStatus(status))),
            };
        }
        if status == 404 || status == 410 {
            return Err(Failure::Other(FetchError::NotFound));
        }
        if status != 200 {
            return Err(Failure::Other(FetchError::OriginStatus(status)));
        }
        // A lying Content-Length larger than the limit stops us before reading anything.
        let declared = header("content-length").and_then(|l| l.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_bytes) {
            return Err(Failure::Other(FetchError::TooLarge { limit: max_bytes }));
        }
        let (etag, last_modified, content_type, cache_control) = (
            header("etag"),
            header("last-modified"),
            header("content-type"),
            header("cache-control"),
        );
        // Sized once from Content-Length (already bounded by the limit): growing by doubling
        // would copy a 4 MB source five times and hold up to twice its size per request.
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = session.read_response_body().await.map_err(other)? {
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(Failure::Other(FetchError::TooLarge { limit: max_bytes }));
            }
            body.extend_from_slice(&chunk);
        }
        if session.response_done() {
            self.connector
                .release_http_session(session, peer, None)
                .await;
        }
        Ok(Response::Body(Fetched {
            bytes: Bytes::from(body),
            etag,
            last_modified,
            content_type,
            cache_control,
            from: None,
        }))
    }
}

enum Response {
    Body(Fetched),
    Redirect(String),
}

enum Failure {
    /// Nothing was sent: safe to try another server.
    Connect(String),
    Other(FetchError),
}

fn classify(e: &pingora::Error) -> FetchError {
    use pingora::ErrorType::*;
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout => FetchError::Timeout,
        _ => FetchError::Unreachable(e.to_string()),
    }
}

/// Resolves an absolute URL to a checked peer, its Host header and request path.
async fn resolve(
    url: &str,
    policy: ssrf::AddressPolicy,
) -> Result<(HttpPeer, String, String), FetchError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| FetchError::BadUrl(url.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(FetchError::BadUrl(url.to_string())),
    };
    let host = uri
        .host()
        .ok_or_else(|| FetchError::BadUrl(url.to_string()))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| FetchError::Unreachable(format!("cannot resolve {host}: {e}")))?
        .collect();
    // Every address the name resolves to must pass: the connect may use any of them.
    let first = *addrs
        .first()
        .ok_or_else(|| FetchError::Unreachable(format!("{host} has no address")))?;
    for a in &addrs {
        ssrf::check(a.ip(), policy).map_err(FetchError::Blocked)?;
    }
    let mut peer = HttpPeer::new(first, tls, bare.to_string());
    peer.options.connection_timeout = Some(std::time::Duration::from_secs(3));
    peer.options.read_timeout = Some(std::time::Duration::from_secs(10));
    let authority = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok((peer, authority, path))
}

/// Resolves a redirect `Location` against the current URL.
fn join(base: &str, location: &str) -> Result<String, FetchError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let uri: http::Uri = base
        .parse()
        .map_err(|_| FetchError::BadUrl(base.to_string()))?;
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    );
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{}://{rest}", uri.scheme_str().unwrap_or("http")));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    let dir = uri.path().rsplit_once('/').map_or("", |(d, _)| d);
    Ok(format!("{origin}{dir}/{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_join() {
        let b = "http://a.test/x/y.jpg?q=1";
        assert_eq!(
            join(b, "https://b.test/z").ok().as_deref(),
            Some("https://b.test/z")
        );
        assert_eq!(
            join(b, "/z.jpg").ok().as_deref(),
            Some("http://a.test/z.jpg")
        );
        assert_eq!(
            join(b, "z.jpg").ok().as_deref(),
            Some("http://a.test/x/z.jpg")
        );
        assert_eq!(
            join(b, "//c.test/z").ok().as_deref(),
            Some("http://c.test/z")
        );
    }

    #[tokio::test]
    async fn loopback_urls_are_refused_by_default() {
        let r = resolve("http://127.0.0.1:9/x.jpg", ssrf::AddressPolicy::default()).await;
        assert!(matches!(
            r,
            Err(FetchError::Blocked(ssrf::Denied::Loopback))
        ));
        let r = resolve("http://localhost:9/x.jpg", ssrf::AddressPolicy::default()).await;
        assert!(matches!(r, Err(FetchError::Blocked(_))));
        let r = resolve("ftp://a.test/x", ssrf::AddressPolicy::default()).await;
        assert!(matches!(r, Err(FetchError::BadUrl(_))));
    }
}
