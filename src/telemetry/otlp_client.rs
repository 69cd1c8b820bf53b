//! The OTLP exporter's HTTP client: Pingora's connector (plain or TLS, connection reuse), the
//! same one the gateway uses for origins, so the export adds no HTTP stack of its own.
//!
//! The SDK exports from its own thread with a plain executor, while the connector needs tokio:
//! requests run on a one-worker tokio runtime owned by the client and the SDK's thread awaits
//! them there.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

/// A collector's answer is a short protobuf; anything longer is not read.
const MAX_RESPONSE: usize = 1 << 20;
/// How long an idle connection to the collector is kept for the next batch.
const IDLE: Duration = Duration::from_secs(30);

/// See the module doc.
pub(super) struct PingoraClient {
    runtime: tokio::runtime::Runtime,
    connector: Arc<Connector>,
    timeout: Duration,
}

impl fmt::Debug for PingoraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingoraClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PingoraClient {
    /// A client whose requests are abandoned after `timeout`.
    pub(super) fn new(timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("imgforge-otlp")
            .enable_all()
            .build()
            .map_err(|e| format!("OTLP exporter runtime: {e}"))?;
        Ok(Self {
            runtime,
            connector: Arc::new(Connector::new(None)),
            timeout,
        })
    }
}

#[async_trait]
impl HttpClient for PingoraClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let connector = self.connector.clone();
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, post(&connector, request)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {timeout:?}").into()),
            }
        });
        task.await?
    }
}

/// Sends one request and reads the whole answer.
async fn post(
    connector: &Connector,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = request.into_parts();
    let uri = &parts.uri;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("unsupported URL {uri}").into()),
    };
    let host = uri.host().ok_or("no host in the OTLP URL")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr: SocketAddr = tokio::net::lookup_host((bare, port))
        .await?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut peer = HttpPeer::new(addr, tls, bare.to_string());
    peer.options.connection_timeout = Some(Duration::from_secs(5));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = RequestHeader::build(parts.method.as_str(), path.as_bytes(), None)?;
    req.insert_header(
        http::header::HOST,
        uri.authority().map_or(host, |a| a.as_str()),
    )?;
    for (name, value) in &parts.headers {
        req.append_header(name.clone(), value.clone())?;
    }
    req.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;

    let (mut session, _reused) = connector.get_http_session(&peer).await?;
    session.write_request_header(Box::new(req)).await?;
    session.write_request_body(body, true).await?;
    session.finish_request_body().await?;
    session.read_response_header().await?;
    let head = session
        .response_header()
        .ok_or("no response header")?
        .clone();
    let mut answer = BytesMut::new();
    while let Some(chunk) = session.read_response_body().await? {
        if answer.len() + chunk.len() > MAX_RESPONSE {
            return Err("collector answer over 1 MiB".into());
        }
        answer.extend_from_slice(&chunk);
    }
    if session.response_done() {
        connector
            .release_http_session(session, &peer, Some(IDLE))
            .await;
    }
    let mut response = Response::new(answer.freeze());
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers.clone();
    Ok(response)
}
