//! Route-dependent behaviour: signatures, presets, only-presets, allowed
//! options and sources, security options, negotiation and client hints.

use super::Want::{Err as E, Ok as K};
use super::*;

const VECTOR: &str =
    "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";

fn pairs(p: &[(&str, &str)]) -> Vec<KeyPair> {
    let keys: Vec<String> = p.iter().map(|(k, _)| hex::encode(k)).collect();
    let salts: Vec<String> = p.iter().map(|(_, s)| hex::encode(s)).collect();
    match hex_key_pairs(&keys, &salts) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn signatures_table() {
    let docs = RouteSettings {
        key_pairs: pairs(&[("secret", "hello")]),
        ..RouteSettings::default()
    };
    let cases = [
        Case(
            "documented vector",
            "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
            K(|r| r.signed && r.options.gravity.kind == GravityKind::Smart),
        ),
        Case(
            "signature covers denormalised path",
            "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs%3Afill%3A300%3A400%3A0/g%3Asm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png?utm=1",
            K(|r| r.signed),
        ),
        Case(
            "tampered",
            "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:401:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
            E(403, "Invalid signature"),
        ),
        Case(
            "unsafe on signed route",
            "/unsafe/rs:fill:300:400:0/plain/http://e.com/a.jpg",
            E(403, "Invalid signature"),
        ),
        Case(
            "bad encoding",
            "/bad-signature/rs:fill:4:4/plain/http://e.com/a.jpg",
            E(403, "Invalid signature encoding"),
        ),
        Case(
            "missing signature segment",
            "/rs:fill:4:4/plain/http://e.com/a.jpg",
            E(403, "Invalid signature encoding"),
        ),
    ];
    run(&docs, &RequestHints::default(), &cases);
    assert_eq!(
        sign_path(&docs.key_pairs[0], VECTOR, 32),
        "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"
    );

    let rotated = RouteSettings {
        key_pairs: pairs(&[("old-key", "old-salt"), ("test-key", "test-salt")]),
        trusted_signatures: vec!["truested".into()],
        ..RouteSettings::default()
    };
    run(
        &rotated,
        &RequestHints::default(),
        &[
            Case(
                "second pair (e2e vector)",
                "/My9d3xq_PYpVHsPrCyww0Kh1w5KZeZhIlWhsa4az1TI/rs:fill:4:4/plain/local:///test1.png",
                E(404, "Source URL is not allowed"),
            ),
            Case(
                "trusted",
                "/truested/w:1/plain/http://e.com/a.jpg",
                K(|r| r.signed),
            ),
            Case(
                "untrusted",
                "/untrusted/w:1/plain/http://e.com/a.jpg",
                E(403, "Invalid signature encoding"),
            ),
        ],
    );
    let rotated_local = RouteSettings {
        allow_local_sources: true,
        ..rotated
    };
    run(
        &rotated_local,
        &RequestHints::default(),
        &[Case(
            "second pair with local root",
            "/My9d3xq_PYpVHsPrCyww0Kh1w5KZeZhIlWhsa4az1TI/rs:fill:4:4/plain/local:///test1.png",
            K(|r| r.signed && r.source == Source::Local("/test1.png".into())),
        )],
    );

    let truncated = RouteSettings {
        key_pairs: match hex_key_pairs(
            &["943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881".into()],
            &["520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5".into()],
        ) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        },
        signature_size: 8,
        ..RouteSettings::default()
    };
    run(
        &truncated,
        &RequestHints::default(),
        &[
            Case(
                "truncated 8",
                "/m3k5QADfcKM/rs:fit:300:300/plain/http://img.example.com/pretty/image.jpg",
                K(|r| r.signed),
            ),
            Case(
                "full length on size 8",
                "/m3k5QADfcKPDj-SDI2AIogZbC3FlAXszuwhtWXYqavc/rs:fit:300:300/plain/http://img.example.com/pretty/image.jpg",
                E(403, "Invalid signature"),
            ),
        ],
    );
}

#[test]
fn presets_table() {
    let route = RouteSettings {
        presets: presets(&[
            ("test1", "resizing_type:fill"),
            ("test2", "blur:0.2/quality:50"),
            ("loop1", "rt:fill/pr:loop2"),
            ("loop2", "bl:0.2/preset:loop1"),
            ("sec", "w:1"),
        ]),
        ..open_route()
    };
    run(
        &route,
        &RequestHints::default(),
        &[
            Case(
                "named presets",
                "/_/preset:test1:test2/plain/http://e.com/a.jpg",
                K(|r| {
                    r.options.resizing_type == ResizingType::Fill
                        && r.options.quality == 50
                        && r.used_presets == ["test1", "test2"]
                }),
            ),
            Case(
                "url overrides preset",
                "/_/pr:test2/q:10/plain/http://e.com/a.jpg",
                K(|r| r.options.quality == 10 && r.options.blur == 0.2),
            ),
            Case(
                "loop detected",
                "/_/pr:loop1/plain/http://e.com/a.jpg",
                K(|r| r.used_presets == ["loop1", "loop2"] && r.options.blur == 0.2),
            ),
            Case(
                "unknown preset",
                "/_/pr:test1:nope/plain/http://e.com/a.jpg",
                E(404, "Unknown preset: nope"),
            ),
            Case(
                "presets expand in canonical",
                "/_/pr:test1/plain/http://e.com/a.jpg",
                K(|r| r.canonical == "/rt:fill/plain/http://e.com/a.jpg"),
            ),
        ],
    );

    let with_default = RouteSettings {
        presets: presets(&[("default", "rt:fill/bl:0.2/q:50"), ("big", "w:500")]),
        ..open_route()
    };
    run(
        &with_default,
        &RequestHints::default(),
        &[
            Case(
                "default preset first",
                "/_/quality:70/plain/http://e.com/a.jpg",
                K(|r| {
                    r.options.resizing_type == ResizingType::Fill
                        && r.options.blur == 0.2
                        && r.options.quality == 70
                        && r.used_presets == ["default"]
                }),
            ),
            Case(
                "reset to imgproxy default survives canonical",
                "/_/q:0/rt:fit/plain/http://e.com/a.jpg",
                K(|r| {
                    r.options.quality == 0
                        && r.canonical.contains("q:0")
                        && r.canonical.contains("rt:fit")
                }),
            ),
            Case(
                "default plus named",
                "/_/pr:big/plain/http://e.com/a.jpg",
                K(|r| r.options.width == 500 && r.used_presets == ["default", "big"]),
            ),
        ],
    );

    let only = RouteSettings {
        only_presets: true,
        presets: presets(&[("test1", "blur:0.2"), ("test2", "quality:50")]),
        ..open_route()
    };
    run(
        &only,
        &RequestHints::default(),
        &[
            Case(
                "only presets plain",
                "/_/test1:test2/plain/http://images.dev/lorem/ipsum.jpg@png",
                K(|r| {
                    r.options.blur == 0.2
                        && r.options.quality == 50
                        && r.options.format == Some(Format::Png)
                }),
            ),
            Case(
                "only presets base64",
                "/_/test1:test2/aHR0cDovL2ltYWdlcy5kZXYvbG9yZW0vaXBzdW0uanBnP3BhcmFtPXZhbHVl.png",
                K(|r| {
                    r.source == Source::Http("http://images.dev/lorem/ipsum.jpg?param=value".into())
                }),
            ),
            Case(
                "only presets rejects options",
                "/_/w:100/plain/http://e.com/a.jpg",
                E(404, "Unknown preset: w"),
            ),
        ],
    );
}

#[test]
fn restrictions_table() {
    let allowed = RouteSettings {
        allowed_options: Some(vec!["w".into(), "h".into(), "pr".into()]),
        presets: presets(&[("test1", "blur:0.2")]),
        ..open_route()
    };
    run(
        &allowed,
        &RequestHints::default(),
        &[
            Case(
                "allowed",
                "/_/w:100/h:200/aHR0cDovL2UuY29tL2EuanBn.png",
                K(|r| r.options.width == 100),
            ),
            Case(
                "forbidden",
                "/_/w:100/h:200/blur:10/aHR0cDovL2UuY29tL2EuanBn.png",
                E(404, "Forbidden processing option blur"),
            ),
            Case(
                "preset contents unchecked",
                "/_/w:100/pr:test1/aHR0cDovL2UuY29tL2EuanBn.png",
                K(|r| r.options.blur == 0.2),
            ),
            Case(
                "full name listed separately",
                "/_/width:100/aHR0cDovL2UuY29tL2EuanBn.png",
                E(404, "Forbidden processing option width"),
            ),
        ],
    );

    let security = RouteSettings {
        allow_security_options: true,
        ..open_route()
    };
    run(
        &security,
        &RequestHints::default(),
        &[
            Case(
                "security options",
                "/_/msr:1.5/msfs:1024/maf:10/mafr:2/mrd:4000/plain/http://e.com/a.jpg",
                K(|r| {
                    let o = &r.options;
                    o.max_src_resolution == Some(1_500_000)
                        && o.max_src_file_size == Some(1024)
                        && o.max_animation_frames == Some(10)
                        && o.max_animation_frame_resolution == Some(2_000_000)
                        && o.max_result_dimension == Some(4000)
                }),
            ),
            Case(
                "security long names",
                "/_/max_src_resolution:0.000001/max_animation_frames:1/plain/http://e.com/a.jpg",
                K(|r| r.options.max_src_resolution == Some(1)),
            ),
            Case(
                "maf zero",
                "/_/maf:0/plain/http://e.com/a.jpg",
                E(404, "Invalid max_animation_frames: 0"),
            ),
        ],
    );

    let sources = RouteSettings {
        allowed_sources: match parse_allowed_sources(&[
            "https://*.example.com/".into(),
            "http://static.example.org/img/".into(),
        ]) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        },
        ..open_route()
    };
    run(
        &sources,
        &RequestHints::default(),
        &[
            Case(
                "wildcard source",
                "/_/plain/https://img.example.com/a.jpg",
                K(|r| matches!(r.source, Source::Http(_))),
            ),
            Case(
                "prefix source",
                "/_/plain/http://static.example.org/img/a.jpg",
                K(|r| matches!(r.source, Source::Http(_))),
            ),
            Case(
                "wildcard stops at slash",
                "/_/plain/https://evil.net/x.example.com/a.jpg",
                E(404, "Source URL is not allowed"),
            ),
            Case(
                "userinfo trick",
                "/_/plain/https://example.com%40evil.net/a.jpg",
                E(404, "Source URL is not allowed"),
            ),
            Case(
                "outside prefix",
                "/_/plain/http://static.example.org/other/a.jpg",
                E(404, "Source URL is not allowed"),
            ),
            Case(
                "relative always allowed",
                "/_/plain/a.jpg",
                K(|r| r.source == Source::Relative("/a.jpg".into())),
            ),
        ],
    );

    let seo = RouteSettings {
        base64_url_includes_filename: true,
        ..open_route()
    };
    run(
        &seo,
        &RequestHints::default(),
        &[Case(
            "seo filename",
            "/_/size:100:100/aHR0cDovL2ltYWdlcy5kZXYvbG9yZW0vaXBzdW0uanBnP3BhcmFtPXZhbHVl.png/puppy.jpg",
            K(|r| {
                r.options.format == Some(Format::Png)
                    && r.source
                        == Source::Http("http://images.dev/lorem/ipsum.jpg?param=value".into())
            }),
        )],
    );
}

#[test]
fn negotiation_table() {
    let route = RouteSettings {
        auto_webp: true,
        auto_avif: true,
        enable_client_hints: true,
        ..open_route()
    };
    let hints = RequestHints {
        accept: Some("image/webp,*/*"),
        width: Some("100"),
        dpr: Some("2"),
        ..RequestHints::default()
    };
    run(
        &route,
        &hints,
        &[
            Case(
                "hints seed width and dpr",
                "/_/plain/http://e.com/a.jpg",
                K(|r| {
                    r.options.width == 50
                        && r.options.dpr == 2.0
                        && r.cache_key().ends_with("#webp")
                        && r.negotiation.vary
                            == ["Accept", "Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width"]
                        && r.output_format(Some(Format::Jpeg), false) == Format::Webp
                }),
            ),
            Case(
                "url overrides hints",
                "/_/width:150/dpr:3/plain/http://e.com/a.jpg@png",
                K(|r| {
                    r.options.width == 150
                        && r.options.dpr == 3.0
                        && !r.cache_key().contains('#')
                        && !r.negotiation.vary.contains(&"Accept")
                        && r.output_format(Some(Format::Jpeg), false) == Format::Png
                }),
            ),
        ],
    );
}
