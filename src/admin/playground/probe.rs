//! The playground's look at a URL through the public listener: the admin listener asks its own
//! public listener for the URL the page shows (a real request through the edge, the cache and
//! the image service) and reports what came back.
//!
//! The page cannot read these facts itself: its previews are `<img>` elements loading from
//! another origin (the public listener), whose headers and bytes a page may not read without
//! CORS, and the public listener sends no CORS headers. The probe only ever connects to the
//! gateway's own public listener, never to an address taken from the request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use serde::Serialize;

/// What a browser sends for an `<img>` (Chromium's value), so format negotiation answers the
/// probe as it answers the preview.
pub(super) const IMAGE_ACCEPT: &str =
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
/// A JSON body (an `/info` answer) larger than this is not parsed.
const MAX_JSON: usize = 256 * 1024;

/// One answer of the public listener.
#[derive(Debug, Serialize)]
pub(super) struct Probed {
    pub status: u16,
    pub content_type: Option<String>,
    /// `webp`, `jpeg`, … for images; the content type otherwise.
    pub format: Option<String>,
    /// Body bytes received.
    pub bytes: u64,
    pub cache_status: Option<String>,
    pub vary: Option<String>,
    /// From sending the request to the last body byte.
    pub millis: f64,
    /// A JSON body (the `/info` facts), parsed.
    pub json: Option<serde_json::Value>,
    /// A short text body (an error message of the gateway).
    pub text: Option<String>,
}

/// Probes through Pingora's connector (the one the gateway uses for origins).
pub(super) struct Prober {
    connector: Arc<Connector>,
}

impl Prober {
    pub(super) fn new() -> Self {
        Self {
            connector: Arc::new(Connector::new(None)),
        }
    }

    /// `GET path` on `addr` with `Host: host`, within `limit`.
    pub(super) async fn get(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
        limit: Duration,
    ) -> Result<Probed, String> {
        match tokio::time::timeout(limit, self.fetch(addr, host, path)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer from {addr} within {limit:?}")),
        }
    }

    async fn fetch(&self, addr: SocketAddr, host: &str, path: &str) -> Result<Probed, String> {
        let e = |what: &str| {
            let what = what.to_string();
            move |err: Box<pingora::Error>| format!("{what}: {err}")
        };
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(e("request"))?;
        req.insert_header(http::header::HOST, host)
            .map_err(e("Host"))?;
        req.insert_header(http::header::ACCEPT, IMAGE_ACCEPT)
            .map_err(e("Accept"))?;
        req.insert_header(http::header::USER_AGENT, "imgforge-playground")
            .map_err(e("User-Agent"))?;
        let started = Instant::now();
        let (mut session, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(e(&format!("connect to {addr}")))?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(e("send"))?;
        session.finish_request_body().await.map_err(e("send"))?;
        session.read_response_header().await.map_err(e("answer"))?;
        let head = session
            .response_header()
            .ok_or("no response header")?
            .clone();
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let keep = content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/"));
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(chunk) = session.read_response_body().await.map_err(e("body"))? {
            bytes += chunk.len() as u64;
            if keep && kept.len() + chunk.len() <= MAX_JSON {
                kept.extend_from_slice(&chunk);
            }
        }
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        if session.response_done() {
            self.connector
                .release_http_session(session, &peer, Some(Duration::from_secs(30)))
                .await;
        }
        let is_json = content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"));
        let json = is_json
            .then(|| serde_json::from_slice(&kept).ok())
            .flatten();
        let text = (keep && !is_json).then(|| {
            String::from_utf8_lossy(&kept[..kept.len().min(512)])
                .trim()
                .to_string()
        });
        Ok(Probed {
            status: head.status.as_u16(),
            format: content_type.as_deref().map(format_of),
            content_type,
            bytes,
            cache_status: header("x-cache-status"),
            vary: header("vary"),
            millis: (millis * 10.0).round() / 10.0,
            json,
            text,
        })
    }
}

/// `image/webp` → `webp`; anything else as it is, without parameters.
fn format_of(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence.strip_prefix("image/") {
        Some("svg+xml") => "svg".into(),
        Some(f) => f.to_string(),
        None => essence.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_content_types() {
        assert_eq!(format_of("image/webp"), "webp");
        assert_eq!(format_of("image/jpeg; charset=binary"), "jpeg");
        assert_eq!(format_of("image/svg+xml"), "svg");
        assert_eq!(format_of("application/json"), "application/json");
    }
}
