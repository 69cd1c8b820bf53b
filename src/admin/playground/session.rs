//! Browser sessions of the playground: after the admin token has been typed into the token form
//! once, an `HttpOnly`, `SameSite=Strict` cookie scoped to `/playground` stands in for it.
//!
//! The cookie is `EXPIRY.MAC` with `MAC = Base64url(HMAC-SHA256(secret, label ‖ EXPIRY ‖ token))`:
//! it carries neither the token nor anything that reveals it, it stops working when it expires,
//! when the token changes (a reload with a new `server.admin_token`) and when the process
//! restarts (the secret is random per process). Nothing is stored on the server.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub(super) const COOKIE: &str = "imgforge_playground";
/// How long a session lasts, in seconds (12 hours).
pub(super) const LIFETIME: u64 = 12 * 3600;

/// Issues and checks session cookies with a per-process secret.
pub(super) struct Sessions {
    secret: [u8; 32],
}

impl Sessions {
    /// A fresh random secret.
    pub(super) fn new() -> Self {
        Self {
            secret: rand::random(),
        }
    }

    fn mac(&self, token: &str, expiry: u64) -> String {
        // A key of any length is accepted by HMAC; the error cannot happen.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret) else {
            return String::new();
        };
        mac.update(b"imgforge playground session\0");
        mac.update(expiry.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The cookie value for a session opened at `now` (unix seconds) with `token`.
    pub(super) fn issue(&self, token: &str, now: u64) -> String {
        let expiry = now + LIFETIME;
        format!("{expiry}.{}", self.mac(token, expiry))
    }

    /// Whether `value` is a live session for `token` at `now`.
    pub(super) fn valid(&self, value: &str, token: &str, now: u64) -> bool {
        let Some((expiry, mac)) = value.split_once('.') else {
            return false;
        };
        let Ok(expiry) = expiry.parse::<u64>() else {
            return false;
        };
        if expiry <= now || expiry > now + LIFETIME {
            return false;
        }
        bool::from(self.mac(token, expiry).as_bytes().ct_eq(mac.as_bytes()))
    }

    /// The session cookie among a request's `Cookie` headers, if any.
    pub(super) fn from_headers(headers: &http::HeaderMap) -> Option<&str> {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == COOKIE).then_some(value)
            })
    }

    /// `Set-Cookie` value opening a session.
    pub(super) fn set_cookie(value: &str) -> String {
        format!("{COOKIE}={value}; Path=/playground; Max-Age={LIFETIME}; HttpOnly; SameSite=Strict")
    }

    /// `Set-Cookie` value ending a session.
    pub(super) fn clear_cookie() -> String {
        format!("{COOKIE}=; Path=/playground; Max-Age=0; HttpOnly; SameSite=Strict")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_expire_and_follow_the_token() {
        let s = Sessions::new();
        let v = s.issue("token-1", 1000);
        assert!(s.valid(&v, "token-1", 1000));
        assert!(s.valid(&v, "token-1", 1000 + LIFETIME - 1));
        assert!(!s.valid(&v, "token-1", 1000 + LIFETIME), "expired");
        assert!(!s.valid(&v, "token-2", 1000), "the token changed");
        assert!(
            !Sessions::new().valid(&v, "token-1", 1000),
            "another process"
        );
        assert!(!v.contains("token-1"));
        // Tampering with the expiry breaks the MAC.
        let (_, mac) = v.split_once('.').expect("dot");
        assert!(!s.valid(&format!("{}.{mac}", 1000 + LIFETIME - 5), "token-1", 1000));
        for bad in ["", ".", "x.y", "1000", &format!("{}.", 1000 + 60)] {
            assert!(!s.valid(bad, "token-1", 1000), "{bad:?}");
        }
    }

    #[test]
    fn cookie_header_parsing() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Sessions::from_headers(&h), None);
        h.append(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; imgforge_playground=abc.def; b=2"),
        );
        assert_eq!(Sessions::from_headers(&h), Some("abc.def"));
        assert!(Sessions::set_cookie("v").contains("HttpOnly; SameSite=Strict"));
        assert!(Sessions::clear_cookie().contains("Max-Age=0"));
    }
}
