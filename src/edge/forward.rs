//! Request identity and forwarding headers (pure helpers).

use std::fmt::Write;

/// Keeps a client-supplied request id when it is short and made of safe characters (so it can go
/// into logs and headers unescaped); otherwise makes a new one.
pub fn request_id(incoming: Option<&[u8]>) -> String {
    if let Some(v) = incoming
        && !v.is_empty()
        && v.len() <= 128
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@+=/".contains(b))
    {
        return String::from_utf8_lossy(v).into_owned();
    }
    let n: u128 = rand::random();
    let mut s = String::with_capacity(32);
    let _ = write!(s, "{n:032x}");
    s
}

/// The `X-Forwarded-For` value to send: the incoming list (if well-formed) plus the client.
pub fn forwarded_for(incoming: Option<&str>, client_ip: Option<String>) -> Option<String> {
    let prior = incoming
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 1024 && v.is_ascii());
    match (prior, client_ip) {
        (Some(p), Some(c)) => Some(format!("{p}, {c}")),
        (None, Some(c)) => Some(c),
        (Some(p), None) => Some(p.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert_eq!(request_id(Some(b"abc-123")), "abc-123");
        let generated = request_id(Some(b"bad id\r\n"));
        assert_eq!(generated.len(), 32);
        assert_ne!(request_id(None), request_id(None));
        assert_eq!(request_id(Some(&[b'a'; 129])).len(), 32);
    }

    #[test]
    fn xff() {
        assert_eq!(
            forwarded_for(Some("1.1.1.1"), Some("2.2.2.2".into())).as_deref(),
            Some("1.1.1.1, 2.2.2.2")
        );
        assert_eq!(
            forwarded_for(None, Some("2.2.2.2".into())).as_deref(),
            Some("2.2.2.2")
        );
        assert_eq!(
            forwarded_for(Some(" "), Some("2.2.2.2".into())).as_deref(),
            Some("2.2.2.2")
        );
    }
}
