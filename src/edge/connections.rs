//! The connection cap on the public listeners (`server.max_connections`): Pingora 0.9.1 has no
//! limit of its own, so the proxy application is wrapped in a [`ServerApp`] that counts every
//! connection from accept (after the TLS handshake) to close, idle keep-alive time included.
//!
//! Over the cap the connection gets a fixed `503 Service Unavailable` with `Connection: close`
//! and `Retry-After: 1`, written at once without reading the request, and is then closed after a
//! short, bounded drain. Why an answer rather than a bare close: a reset or an empty reply looks
//! to clients and load balancers like a network fault (some retry at once, on the same
//! gateway), while a 503 says "busy, try later" and is counted as such. Why the drain: closing a
//! socket whose request is still unread makes the kernel send a reset, which can destroy the 503
//! before the client reads it. The drain is what nginx calls a lingering close, and it is
//! bounded three ways ([`LINGER`], [`LINGER_BYTES`], and at most `max_connections` refusals
//! lingering at once, beyond which refused connections are closed at once), so refusals cannot
//! become the resource exhaustion the cap is there to prevent: the public listeners hold at most
//! twice `max_connections` sockets. HTTP/2 connections (TLS with ALPN `h2`) are closed without a
//! reply, as an HTTP/1.1 status line would be garbage to them.
//!
//! The wrapper also owns the last step of a graceful stop. Pingora's HTTP apps, on `cleanup`,
//! drop every connection still waiting for a request head, and that includes one accepted a
//! moment before the accept loop stopped whose request is still in flight in the kernel: its
//! client sees the connection close with nothing in reply (seen once in CI as a failed request
//! during a binary upgrade). So `cleanup` first lets open connections [`SETTLE`]: those with a
//! request on the way are served (with `Connection: close`, the process is stopping), idle
//! keep-alive ones are dropped as before once the settle time is over.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{ALPN, Stream};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::metrics::Connections as ConnectionMetrics;
use crate::protect::connections::{ConnectionLimit, Permit};

/// The whole reply to a refused connection.
pub const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 21\r\n\
Cache-Control: no-store\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
\r\n\
too many connections\n";

/// How long a refused connection is drained before it is closed.
pub const LINGER: Duration = Duration::from_secs(1);
/// How much of a refused connection's request is read (and discarded) at most.
pub const LINGER_BYTES: usize = 64 * 1024;
/// How long `cleanup` waits for open connections to finish on their own before the inner app
/// drops those still waiting for a request; it returns as soon as none is open.
pub const SETTLE: Duration = Duration::from_millis(500);

/// A [`ServerApp`] that admits at most `max_connections` connections to `inner` at once.
pub struct ConnectionCap<A> {
    inner: Arc<A>,
    limit: Arc<ConnectionLimit>,
    lingering: Arc<ConnectionLimit>,
    metrics: ConnectionMetrics,
}

impl<A> ConnectionCap<A> {
    /// Wraps `inner`; `max` = 0 counts connections without refusing any.
    pub fn new(inner: A, max: usize, metrics: &ConnectionMetrics) -> Self {
        Self {
            inner: Arc::new(inner),
            limit: ConnectionLimit::new(max),
            lingering: ConnectionLimit::new(max),
            metrics: metrics.clone(),
        }
    }
}

/// An admitted connection: its permit and its place in the gauge, both given back on drop.
struct Admitted {
    _permit: Permit,
    gauge: prometheus::IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionCap<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(permit) = self.limit.try_open() else {
            self.metrics.refused.inc();
            let linger = self.lingering.try_open();
            refuse(stream, linger).await;
            return None;
        };
        self.metrics.open.inc();
        let _admitted = Admitted {
            _permit: permit,
            gauge: self.metrics.open.clone(),
        };
        // A reusable stream goes straight back to the inner app so that the permit covers the
        // connection's whole life (Pingora's HTTP apps keep their own keep-alive loop anyway).
        let mut next = self.inner.process_new(stream, shutdown).await;
        while let Some(stream) = next {
            next = self.inner.process_new(stream, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        while self.limit.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.inner.cleanup().await;
    }
}

/// Answers 503 and closes; `linger` = `None` when too many refusals are lingering already.
async fn refuse(mut stream: Stream, linger: Option<Permit>) {
    let Some(_linger) = linger else { return };
    if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
        return;
    }
    // The socket's send buffer is empty, so the write does not wait unless the peer is broken.
    let written = tokio::time::timeout(LINGER, async {
        stream.write_all(REFUSAL).await?;
        AsyncWriteExt::shutdown(&mut stream).await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        assert_eq!(len, body.len());
        assert!(head.contains("\r\nConnection: close"));
    }
}
