//! Bearer-token checks (routes' `auth_token`, the admin token).

use subtle::ConstantTimeEq;

/// Whether `headers` carry `Authorization: Bearer <t>` for one of `tokens` (constant-time per
/// token, and every token is compared, so timing does not tell which one matched).
pub fn bearer_matches(headers: &http::HeaderMap, tokens: &[&str]) -> bool {
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    tokens.iter().fold(false, |ok, t| {
        ok | bool::from(t.as_bytes().ct_eq(presented.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer() {
        let mut h = http::HeaderMap::new();
        assert!(!bearer_matches(&h, &["secret-secret-123"]));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer b"),
        );
        assert!(bearer_matches(&h, &["a", "b"]));
        assert!(!bearer_matches(&h, &["a", "bb"]));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic b"),
        );
        assert!(!bearer_matches(&h, &["b"]));
    }
}
