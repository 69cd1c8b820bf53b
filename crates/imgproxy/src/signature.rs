//! URL signatures: `Base64url(HMAC-SHA256(key, salt || path)[..size])`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use subtle::ConstantTimeEq;

use super::error::UrlError;
use super::path::BASE64_LENIENT;
use super::settings::{KeyPair, RouteSettings};

/// Longest signature segment worth decoding: 32 bytes are 43 Base64 chars.
const MAX_SIGNATURE_CHARS: usize = 64;

/// Raw truncated MAC of `path` (a missing leading `/` is added, as imgproxy v4). A query-API
/// message starts with `?` and is signed as it is.
fn mac_for(pair: &KeyPair, path: &str, size: usize) -> ([u8; 32], usize) {
    let mut mac = pair.prepared();
    if !path.starts_with(['/', '?']) {
        mac.update(b"/");
    }
    mac.update(path.as_bytes());
    let full: [u8; 32] = mac.finalize().into_bytes().into();
    (full, size.clamp(1, 32))
}

/// Signs `path` — everything after the signature segment, e.g.
/// `/rs:fill:300:400/plain/http://example.com/a.jpg@webp` — and returns the
/// signature segment. `size` is clamped to 1..=32 bytes.
pub fn sign_path(pair: &KeyPair, path: &str, size: usize) -> String {
    let (mac, n) = mac_for(pair, path, size);
    URL_SAFE_NO_PAD.encode(&mac[..n])
}

/// Checks the signature segment against `path` (the re-denormalised path after
/// it, without leading `/`). Returns whether the URL was actually signed
/// (`false` = accepted as unsigned because the route allows it).
pub(crate) fn verify(
    settings: &RouteSettings,
    signature: &str,
    path: &str,
) -> Result<bool, UrlError> {
    // A ':' means the client left the signature segment out and we are looking
    // at an option; say so instead of "invalid signature".
    let unsigned = |settings: &RouteSettings| {
        if signature.contains(':') {
            Err(UrlError::MalformedSignature)
        } else if settings.allow_unsigned {
            Ok(false)
        } else {
            Err(UrlError::NoSignatureKey)
        }
    };
    if settings.key_pairs.is_empty() {
        return unsigned(settings);
    }
    let trusted = settings
        .trusted_signatures
        .iter()
        .fold(subtle::Choice::from(0), |acc, t| {
            acc | t.as_bytes().ct_eq(signature.as_bytes())
        });
    if bool::from(trusted) {
        return Ok(true);
    }
    let mut given = [0u8; 48];
    let decoded = if signature.len() <= MAX_SIGNATURE_CHARS {
        BASE64_LENIENT.decode_slice(signature, &mut given).ok()
    } else {
        None
    };
    let Some(len) = decoded else {
        return if settings.allow_unsigned {
            unsigned(settings)
        } else {
            Err(UrlError::InvalidSignatureEncoding)
        };
    };
    let given = &given[..len];
    let mut ok = subtle::Choice::from(0);
    for pair in &settings.key_pairs {
        let (mac, n) = mac_for(pair, path, settings.signature_size);
        // ct_eq on slices of different length is false without early exit on content.
        ok |= mac[..n].ct_eq(given);
    }
    if bool::from(ok) {
        Ok(true)
    } else if settings.allow_unsigned {
        Ok(false)
    } else {
        Err(UrlError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::hex_key_pairs;

    fn raw(pairs: &[(&str, &str)], size: usize) -> RouteSettings {
        RouteSettings {
            key_pairs: pairs
                .iter()
                .map(|(k, s)| KeyPair::new(k.as_bytes(), s.as_bytes()).unwrap())
                .collect(),
            signature_size: size,
            ..RouteSettings::default()
        }
    }

    #[test]
    fn documented_vector() {
        let pair = &hex_key_pairs(&["736563726574".into()], &["68656C6C6F".into()]).unwrap()[0];
        let path =
            "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";
        assert_eq!(
            sign_path(pair, path, 32),
            "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"
        );
        // v4: a path without its leading '/' is hashed with it.
        assert_eq!(
            sign_path(pair, &path[1..], 32),
            "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"
        );
    }

    #[test]
    fn example_code_vectors() {
        let pair = &hex_key_pairs(
            &["943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881".into()],
            &["520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5".into()],
        )
        .unwrap()[0];
        let path = "/rs:fit:300:300/plain/http://img.example.com/pretty/image.jpg";
        assert_eq!(
            sign_path(pair, path, 32),
            "m3k5QADfcKPDj-SDI2AIogZbC3FlAXszuwhtWXYqavc"
        );
        assert_eq!(sign_path(pair, path, 8), "m3k5QADfcKM");
    }

    #[test]
    fn imgproxy_unit_vectors() {
        let one = raw(&[("test-key", "test-salt")], 32);
        assert_eq!(
            verify(&one, "oWaL7QoW5TsgbuiS9-5-DI8S3Ibbo1gdB2SteJh3a20", "asd"),
            Ok(true)
        );
        assert_eq!(
            verify(&one, "oWaL7QoW5Ts", "asd"),
            Err(UrlError::InvalidSignature)
        );
        let truncated = raw(&[("test-key", "test-salt")], 8);
        assert_eq!(verify(&truncated, "oWaL7QoW5Ts", "asd"), Ok(true));
        let two = raw(
            &[("test-key", "test-salt"), ("test-key2", "test-salt2")],
            32,
        );
        assert_eq!(
            verify(&two, "jYz1UZ7j1BCdSzH3pZhaYf0iuz0vusoOTdqJsUT6WXI", "asd"),
            Ok(true)
        );
        assert_eq!(
            verify(&two, "oWaL7QoW5TsgbuiS9-5-DI8S3Ibbo1gdB2SteJh3a20", "asd"),
            Ok(true)
        );
        assert_eq!(
            verify(&two, "dtLwhdnPPis", "asd"),
            Err(UrlError::InvalidSignature)
        );
        let trusted = RouteSettings {
            trusted_signatures: vec!["truested".into()],
            ..raw(&[("test-key", "test-salt")], 32)
        };
        assert_eq!(verify(&trusted, "truested", "asd"), Ok(true));
        assert_eq!(
            verify(&trusted, "untrusted", "asd"),
            Err(UrlError::InvalidSignatureEncoding)
        );
    }

    #[test]
    fn end_to_end_vector_and_errors() {
        let s = raw(&[("test-key", "test-salt")], 32);
        let path = "rs:fill:4:4/plain/local:///test1.png";
        assert_eq!(
            verify(&s, "My9d3xq_PYpVHsPrCyww0Kh1w5KZeZhIlWhsa4az1TI", path),
            Ok(true)
        );
        assert_eq!(verify(&s, "unsafe", path), Err(UrlError::InvalidSignature));
        assert_eq!(
            verify(&s, "bad-signature", path),
            Err(UrlError::InvalidSignatureEncoding)
        );
        assert_eq!(
            verify(&s, "rs:fill:4:4", path),
            Err(UrlError::InvalidSignatureEncoding)
        );
        assert_eq!(
            verify(&s, &"A".repeat(200), path),
            Err(UrlError::InvalidSignatureEncoding)
        );
    }

    #[test]
    fn unsigned_modes() {
        let none = RouteSettings::default();
        assert_eq!(verify(&none, "unsafe", "x"), Err(UrlError::NoSignatureKey));
        let open = RouteSettings {
            allow_unsigned: true,
            ..RouteSettings::default()
        };
        assert_eq!(verify(&open, "unsafe", "x"), Ok(false));
        assert_eq!(
            verify(&open, "rs:fill", "x"),
            Err(UrlError::MalformedSignature)
        );
        let mixed = RouteSettings {
            allow_unsigned: true,
            ..raw(&[("test-key", "test-salt")], 32)
        };
        assert_eq!(
            verify(&mixed, "oWaL7QoW5TsgbuiS9-5-DI8S3Ibbo1gdB2SteJh3a20", "asd"),
            Ok(true)
        );
        assert_eq!(verify(&mixed, "_", "asd"), Ok(false));
        assert_eq!(
            verify(&mixed, "w:100", "asd"),
            Err(UrlError::MalformedSignature)
        );
    }
}
