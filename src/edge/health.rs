//! `/healthz` and `/readyz` on the public listeners (`[server] public_health = true`), answered
//! before routing so that no site (and no origin) ever sees them: the contract load balancers
//! expect (liveness 204 always; readiness 204 once serving, 503 while starting or draining).
//! The admin listener keeps its own `/health` and `/readyz`.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::state::Shared;

/// What a probe path asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Live,
    Ready,
}

fn probe(path: &str) -> Option<Probe> {
    match path {
        "/healthz" => Some(Probe::Live),
        "/readyz" => Some(Probe::Ready),
        _ => None,
    }
}

/// The status a probe gets: liveness is answered by a live process; readiness waits for the
/// listeners and turns off when a shutdown or upgrade begins.
fn status(probe: Probe, method: &http::Method, ready: bool) -> u16 {
    if method != http::Method::GET && method != http::Method::HEAD {
        return 405;
    }
    match probe {
        Probe::Live => 204,
        Probe::Ready if ready => 204,
        Probe::Ready => 503,
    }
}

/// Answers the request when it is a health probe and public health is on; `true` when answered.
pub(super) async fn answered(session: &mut Session, shared: &Shared) -> pingora::Result<bool> {
    let req = session.req_header();
    let Some(probe) = probe(req.uri.path()) else {
        return Ok(false);
    };
    if !shared.runtime.load().config.server.public_health {
        return Ok(false);
    }
    let status = status(probe, &req.method, shared.is_ready());
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header("Cache-Control", "no-store")?;
    resp.insert_header("Content-Length", "0")?;
    if status == 405 {
        resp.insert_header("Allow", "GET, HEAD")?;
    }
    // Probes are cheap and frequent: keep the connection for the next one.
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes() {
        assert_eq!(probe("/healthz"), Some(Probe::Live));
        assert_eq!(probe("/readyz"), Some(Probe::Ready));
        for other in ["/", "/health", "/healthz/", "/readyz/x", "/img/healthz"] {
            assert_eq!(probe(other), None, "{other}");
        }
        let get = http::Method::GET;
        assert_eq!(status(Probe::Live, &get, false), 204);
        assert_eq!(status(Probe::Ready, &get, true), 204);
        assert_eq!(status(Probe::Ready, &get, false), 503);
        assert_eq!(status(Probe::Ready, &http::Method::HEAD, true), 204);
        assert_eq!(status(Probe::Live, &http::Method::POST, true), 405);
    }
}
