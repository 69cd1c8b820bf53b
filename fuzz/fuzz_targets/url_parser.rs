//! Fuzzes the imgproxy URL parser: any input must yield a request or an
//! error (never a panic), and every accepted request's canonical path must
//! parse back to the same options and source.
//!
//! Run: `cargo +nightly fuzz run url_parser` from the repository root.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use imgforge_imgproxy::{
    KeyPair, Presets, RequestHints, RouteSettings, parse_canonical, parse_request, sign_path,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

struct Routes {
    open: RouteSettings,
    signed: RouteSettings,
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let defs = BTreeMap::from([
            ("default".to_owned(), "q:70/sm:0".to_owned()),
            ("thumb".to_owned(), "rs:fill:200:200/pr:loop".to_owned()),
            ("loop".to_owned(), "bl:1/pr:thumb".to_owned()),
        ]);
        let presets = match Presets::parse(&defs) {
            Ok(p) => p,
            Err(e) => panic!("fuzz presets: {e}"),
        };
        let pair = match KeyPair::new(b"fuzz-key", b"fuzz-salt") {
            Ok(p) => p,
            Err(e) => panic!("fuzz key: {e}"),
        };
        let open = RouteSettings {
            allow_unsigned: true,
            allow_local_sources: true,
            allow_security_options: true,
            enable_client_hints: true,
            auto_webp: true,
            presets,
            ..RouteSettings::default()
        };
        let signed = RouteSettings {
            allow_unsigned: false,
            key_pairs: vec![pair],
            signature_size: 8,
            ..open.clone()
        };
        Routes { open, signed }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    // First line: the path; optional second line: an Accept header.
    let (path, accept) = input.split_once('\n').unwrap_or((input, ""));
    let hints = RequestHints {
        accept: Some(accept),
        width: Some(accept),
        dpr: Some(accept),
        ..RequestHints::default()
    };
    let routes = routes();
    for settings in [&routes.open, &routes.signed] {
        if let Ok(req) = parse_request(path, &hints, settings, NOW) {
            let again = parse_canonical(&req.canonical, settings, NOW);
            match again {
                Ok(again) => {
                    assert_eq!(
                        again.options,
                        req.options.without_expiry(),
                        "{}",
                        req.canonical
                    );
                    assert_eq!(again.source, req.source);
                    assert_eq!(again.canonical, req.canonical);
                }
                Err(e) => panic!("canonical {} does not parse: {e}", req.canonical),
            }
        }
    }
    // Also reach past the signature check on the signed route.
    let rest = path.trim_start_matches('/');
    let rest = rest.split_once('/').map_or(rest, |(_, r)| r);
    let signed_path = format!(
        "/{}/{rest}",
        sign_path(&routes.signed.key_pairs[0], rest, 8)
    );
    let _ = parse_request(&signed_path, &hints, &routes.signed, NOW);
});
