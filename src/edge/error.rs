//! Errors the edge answers itself, and the one place they map to an HTTP status and body.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use crate::imgproxy::UrlError;

/// What went wrong while handling a request at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EdgeError {
    /// No site for the Host and no default site.
    UnknownHost,
    /// The site has no route for the path.
    NoRoute,
    /// No origin server could be selected.
    NoUpstream,
    /// The origin could not be reached or broke the exchange.
    Upstream,
    /// The origin did not answer in time.
    UpstreamTimeout,
    /// The client sent something unusable.
    BadRequest,
    /// Anything else on our side.
    Internal,
    /// The client already has as many requests in flight as it may.
    TooManyConcurrent,
    /// The route needs a bearer token the request did not present.
    Unauthorized,
    /// A rate limit refused the request.
    RateLimited(crate::protect::ratelimit::Decision),
    /// An image URL that does not parse, verify or is not allowed (403/404 as imgproxy).
    Url(UrlError),
    /// The request target is longer than `server.max_url_length`.
    UrlTooLong,
    /// The header block is larger than `server.max_header_size`.
    HeadersTooLarge,
}

impl EdgeError {
    /// The status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::UnknownHost => 421,
            EdgeError::NoRoute => 404,
            EdgeError::NoUpstream | EdgeError::Upstream => 502,
            EdgeError::UpstreamTimeout => 504,
            EdgeError::BadRequest => 400,
            EdgeError::Internal => 500,
            EdgeError::Url(e) => e.status(),
            EdgeError::RateLimited(_) => 429,
            EdgeError::Unauthorized => 401,
            EdgeError::TooManyConcurrent => 429,
            EdgeError::UrlTooLong => 414,
            EdgeError::HeadersTooLarge => 431,
        }
    }

    /// The short plain-text body.
    pub fn message(&self) -> std::borrow::Cow<'static, str> {
        let text = match self {
            // Signature failures say no more than imgproxy does; other URL errors name the
            // option and argument so that client authors can fix them.
            EdgeError::Url(
                e @ (UrlError::NoSignatureKey
                | UrlError::InvalidSignatureEncoding
                | UrlError::InvalidSignature),
            ) => {
                return format!("{}\n", e.public_message()).into();
            }
            EdgeError::Url(e) => {
                let mut m = e.to_string();
                m.truncate(300);
                m.push('\n');
                return m.into();
            }
            EdgeError::UnknownHost => "unknown host: no site is configured for this Host\n",
            EdgeError::NoRoute => "not found: no route for this path\n",
            EdgeError::NoUpstream => "bad gateway: no origin server available\n",
            EdgeError::Upstream => "bad gateway: origin server failed\n",
            EdgeError::UpstreamTimeout => "gateway timeout: origin server did not answer in time\n",
            EdgeError::BadRequest => "bad request\n",
            EdgeError::Internal => "internal error\n",
            EdgeError::RateLimited(_) => "too many requests\n",
            EdgeError::Unauthorized => "unauthorized\n",
            EdgeError::TooManyConcurrent => "too many concurrent requests from this client\n",
            EdgeError::UrlTooLong => "URI too long\n",
            EdgeError::HeadersTooLarge => "request header fields too large\n",
        };
        text.into()
    }

    /// Classifies a Pingora proxy error. `None` means the client is gone: answer nothing.
    pub fn from_proxy_error(e: &Error) -> Option<Self> {
        use ErrorType::*;
        match e.etype() {
            HTTPStatus(code) if *code == 504 => return Some(EdgeError::UpstreamTimeout),
            HTTPStatus(code) if *code == 400 => return Some(EdgeError::BadRequest),
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                if e.esource() == &ErrorSource::Downstream {
                    return None;
                }
                return Some(EdgeError::UpstreamTimeout);
            }
            ConnectNoRoute => return Some(EdgeError::NoUpstream),
            _ => {}
        }
        match e.esource() {
            ErrorSource::Upstream => Some(EdgeError::Upstream),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed => None,
                _ => Some(EdgeError::BadRequest),
            },
            ErrorSource::Internal | ErrorSource::Unset => Some(EdgeError::Internal),
        }
    }

    /// Headers that go with the status (rate-limit information).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            EdgeError::RateLimited(d) => {
                let secs = |d: std::time::Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
                vec![
                    ("Retry-After", secs(d.retry_after).max(1).to_string()),
                    ("RateLimit-Limit", d.limit.to_string()),
                    ("RateLimit-Remaining", d.remaining.to_string()),
                    ("RateLimit-Reset", secs(d.reset).to_string()),
                ]
            }
            EdgeError::Unauthorized => vec![("WWW-Authenticate", "Bearer".to_string())],
            EdgeError::TooManyConcurrent => vec![("Retry-After", "1".to_string())],
            _ => Vec::new(),
        }
    }

    /// Label for the upstream error counter.
    pub fn upstream_kind(e: &Error) -> &'static str {
        match e.etype() {
            ErrorType::ConnectTimedout => "connect_timeout",
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => "timeout",
            ErrorType::ConnectRefused => "connect_refused",
            ErrorType::ConnectNoRoute => "no_server",
            ErrorType::TLSHandshakeFailure | ErrorType::TLSHandshakeTimedout => "tls",
            _ if matches!(e.esource(), ErrorSource::Upstream) => "protocol",
            _ => "other",
        }
    }
}

/// Writes a complete short plain-text response, unless a response has already started (then the
/// connection is simply closed by the caller's error path).
pub async fn respond(
    session: &mut Session,
    status: u16,
    body: &str,
    request_id: &str,
) -> pingora::Result<()> {
    respond_with(session, status, body, request_id, &[]).await
}

/// [`respond`] with extra headers.
pub async fn respond_with(
    session: &mut Session,
    status: u16,
    body: &str,
    request_id: &str,
    extra: &[(&'static str, String)],
) -> pingora::Result<()> {
    if session.response_written().is_some() {
        return Ok(());
    }
    let mut resp = ResponseHeader::build(status, Some(5))?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", body.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    resp.insert_header("X-Request-Id", request_id)?;
    for (k, v) in extra {
        resp.insert_header(*k, v.as_str())?;
    }
    let head = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head || body.is_empty())
        .await?;
    if !head && !body.is_empty() {
        session
            .write_response_body(Some(Bytes::copy_from_slice(body.as_bytes())), true)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let mut e = Error::new(ErrorType::ReadTimedout);
        e.esource = ErrorSource::Upstream;
        assert_eq!(
            EdgeError::from_proxy_error(&e).map(|x| x.status()),
            Some(504)
        );
        let mut e = Error::new(ErrorType::ConnectRefused);
        e.esource = ErrorSource::Upstream;
        assert_eq!(
            EdgeError::from_proxy_error(&e).map(|x| x.status()),
            Some(502)
        );
        let mut e = Error::new(ErrorType::WriteError);
        e.esource = ErrorSource::Downstream;
        assert_eq!(EdgeError::from_proxy_error(&e), None);
    }
}
