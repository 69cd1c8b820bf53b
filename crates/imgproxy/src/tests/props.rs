//! Property tests: canonical round trip and totality (no panics on any input).

use proptest::prelude::*;

use super::*;

fn num(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        (0..=max).prop_map(|n| n.to_string()),
        Just(String::new())
    ]
}

/// Floats as clients write them: short decimals and full-precision values.
fn float() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|n| format!("{}", f64::from(n) / 10.0)),
        (1e-9f64..1e6).prop_map(|f| f.to_string()),
        Just("0.5".to_owned()),
        Just("1".to_owned()),
    ]
}

fn unit() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..=100).prop_map(|n| format!("{}", f64::from(n) / 100.0)),
        (0.0f64..=1.0).prop_map(|f| f.to_string())
    ]
}

fn boolean() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["1", "0", "t", "false", "True", "yes", ""]).prop_map(str::to_owned)
}

fn anchor() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "ce", "no", "ea", "so", "we", "noea", "nowe", "soea", "sowe",
    ])
}

fn gravity(smart: bool) -> impl Strategy<Value = String> {
    let mut kinds = vec![
        (anchor(), float(), float())
            .prop_map(|(a, x, y)| format!("{a}:{x}:{y}"))
            .boxed(),
        anchor().prop_map(str::to_owned).boxed(),
        (unit(), unit())
            .prop_map(|(x, y)| format!("fp:{x}:{y}"))
            .boxed(),
    ];
    if smart {
        kinds.push(Just("sm".to_owned()).boxed());
    }
    prop::strategy::Union::new(kinds)
}

fn format() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["jpg", "jpeg", "png", "webp", "avif", "gif"])
}

fn any_format() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "jpg", "png", "webp", "avif", "gif", "ico", "svg", "heic", "bmp", "tiff", "jxl",
    ])
}

fn option() -> impl Strategy<Value = String> {
    let rt = prop::sample::select(vec!["fit", "fill", "fill-down", "force", "auto"]);
    prop_oneof![
        (
            prop::sample::select(vec!["w", "width", "h", "height", "mw", "mh", "pix", "mb"]),
            num(5000)
        )
            .prop_map(|(n, v)| format!("{n}:{}", if v.is_empty() { "0".into() } else { v })),
        (rt.clone(), num(4000), num(4000), boolean())
            .prop_map(|(t, w, h, e)| format!("rs:{t}:{w}:{h}:{e}")),
        (rt, num(100), boolean(), gravity(false))
            .prop_map(|(t, w, e, g)| format!("rs:{t}:{w}::{e}:1:{g}")),
        (num(100), num(100), boolean()).prop_map(|(w, h, e)| format!("s:{w}:{h}:{e}")),
        (float(), prop::option::of(float())).prop_map(|(x, y)| match y {
            Some(y) => format!("z:{x}:{y}"),
            None => format!("z:{x}"),
        }),
        float().prop_map(|f| format!("dpr:{f}")),
        (
            prop::sample::select(vec![
                "el", "ar", "sm", "kcr", "scp", "ph", "eth", "raw", "att"
            ]),
            boolean()
        )
            .prop_map(|(n, b)| format!("{n}:{b}")),
        (
            prop::sample::select(vec!["ex", "exar"]),
            boolean(),
            prop::option::of(gravity(false))
        )
            .prop_map(|(n, b, g)| match g {
                Some(g) => format!("{n}:{b}:{g}"),
                None => format!("{n}:{b}"),
            }),
        gravity(true).prop_map(|g| format!("g:{g}")),
        (float(), float(), prop::option::of(gravity(true))).prop_map(|(w, h, g)| match g {
            Some(g) => format!("c:{w}:{h}:{g}"),
            None => format!("c:{w}:{h}"),
        }),
        (
            prop::option::of(float()),
            prop::option::of("[0-9a-f]{6}"),
            boolean(),
            boolean()
        )
            .prop_map(|(t, c, h, v)| format!(
                "t:{}:{}:{h}:{v}",
                t.unwrap_or_default(),
                c.unwrap_or_default()
            )),
        prop::collection::vec(num(50), 1..=4).prop_map(|v| format!("pd:{}", v.join(":"))),
        (-8i32..8).prop_map(|k| format!("rot:{}", k * 90)),
        (boolean(), boolean()).prop_map(|(h, v)| format!("fl:{h}:{v}")),
        prop_oneof![
            "[0-9a-f]{6}".prop_map(|h| format!("bg:{h}")),
            "[0-9a-f]{3}".prop_map(|h| format!("bg:{h}")),
            (0u8.., 0u8.., 0u8..).prop_map(|(r, g, b)| format!("bg:{r}:{g}:{b}")),
            Just("bg:".to_owned()),
        ],
        (prop::sample::select(vec!["bl", "sh"]), float()).prop_map(|(n, f)| format!("{n}:{f}")),
        (
            unit(),
            prop::option::of(anchor()),
            float(),
            float(),
            prop::option::of(float())
        )
            .prop_map(|(o, p, x, y, s)| {
                let s = s
                    .filter(|s| s.parse::<f64>().unwrap_or(0.0) > 0.0)
                    .unwrap_or_default();
                format!("wm:{o}:{}:{x}:{y}:{s}", p.unwrap_or("re"))
            }),
        (0u8..=100).prop_map(|q| format!("q:{q}")),
        prop::collection::vec((any_format(), 0u8..=100), 1..3).prop_map(|v| format!(
            "fq:{}",
            v.iter()
                .map(|(f, q)| format!("{f}:{q}"))
                .collect::<Vec<_>>()
                .join(":")
        )),
        format().prop_map(|f| format!("f:{f}")),
        prop::collection::vec(any_format(), 1..3).prop_map(|v| format!("skp:{}", v.join(":"))),
        prop_oneof![
            "[a-zA-Z0-9._~-]{0,8}".prop_map(|s| format!("cb:{s}")),
            "[a-z.-]{1,8}".prop_map(|s| format!("fn:{s}"))
        ],
        "[ -~]{0,12}".prop_map(|s| {
            use base64::Engine as _;
            format!(
                "fn:{}:1",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
            )
        }),
        (1_800_000_000i64..1_900_000_000).prop_map(|t| format!("exp:{t}")),
        (prop::sample::select(vec!["msr", "mafr"]), float()).prop_map(|(n, f)| format!("{n}:{f}")),
        (
            prop::sample::select(vec!["msfs", "maf", "mrd"]),
            1u32..100_000
        )
            .prop_map(|(n, v)| format!("{n}:{v}")),
        prop::sample::select(vec!["pr:small", "pr:wm", "pr:small:wm", "pr:default"])
            .prop_map(str::to_owned),
    ]
}

fn source() -> impl Strategy<Value = String> {
    use base64::Engine as _;
    let path = "[a-zA-Z0-9 ._~%@?=&+é뮺-]{1,20}";
    prop_oneof![
        path.prop_map(|p| {
            let escaped = p
                .replace('%', "%25")
                .replace('?', "%3F")
                .replace('@', "%40")
                .replace(' ', "%20");
            format!("plain/https://img.example.com/{escaped}")
        }),
        (path, prop::option::of(format())).prop_map(|(p, f)| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("http://e.com/{p}"));
            let (a, z) = b.split_at(b.len() / 2);
            match f {
                Some(f) => format!("{a}/{z}.{f}"),
                None => format!("{a}/{z}"),
            }
        }),
        ("[a-z0-9]{1,8}", format()).prop_map(|(p, f)| format!("plain/images/{p}.jpg@{f}")),
        "[a-z0-9 ]{1,8}".prop_map(|p| format!("plain/local:///dir/{}", p.replace(' ', "%2520"))),
    ]
}

fn routes() -> Vec<RouteSettings> {
    let named = [("small", "rs:fill:100:100/q:60"), ("wm", "wm:0.5:soea:5:5")];
    let with_default = [
        (
            "default",
            "rt:fill/q:70/bg:fff/fq:webp:50/wm:0.3:no/skp:gif/sm:0",
        ),
        named[0],
        named[1],
    ];
    vec![
        RouteSettings {
            presets: presets(&[named[0], named[1], ("default", "cb:")]),
            allow_security_options: true,
            ..open_route()
        },
        RouteSettings {
            presets: presets(&with_default),
            allow_security_options: true,
            ..open_route()
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn canonical_round_trip(opts in prop::collection::vec(option(), 0..8), src in source(), route in 0usize..2) {
        let settings = &routes()[route];
        let path = if opts.is_empty() { format!("/_/{src}") } else { format!("/_/{}/{src}", opts.join("/")) };
        if let Ok(req) = parse_request(&path, &RequestHints::default(), settings, NOW) {
            let again = parse_canonical(&req.canonical, settings, NOW);
            prop_assert!(again.is_ok(), "{path} → {} → {again:?}", req.canonical);
            if let Ok(again) = again {
                prop_assert_eq!(&again.options, &req.options.without_expiry(), "{} → {}", path, req.canonical);
                prop_assert_eq!(&again.source, &req.source);
                prop_assert_eq!(&again.canonical, &req.canonical);
            }
        }
    }

    #[test]
    fn valid_options_parse(opts in prop::collection::vec(option(), 1..6)) {
        let settings = &routes()[0];
        let path = format!("/_/{}/plain/http://e.com/a.jpg", opts.join("/"));
        // Generated options are all valid except odd corner cases we accept as errors
        // (e.g. fp offsets written as 1e-7); they must never be a 403/422.
        if let Err(e) = parse_request(&path, &RequestHints::default(), settings, NOW) {
            prop_assert_eq!(e.status(), 404, "{} → {}", path, e);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        for settings in routes() {
            let _ = parse_request(&s, &RequestHints::default(), &settings, NOW);
            let _ = parse_canonical(&s, &settings, NOW);
        }
    }

    #[test]
    fn option_like_strings_never_panic(
        s in "(/[a-z_:%0-9.@=-]{0,12}){1,8}",
        accept in prop::option::of("[a-z/*,;=.0-9 ]{0,30}"),
        w in prop::option::of("[-0-9.]{0,6}"),
    ) {
        let settings = RouteSettings { enable_client_hints: true, auto_avif: true, ..routes().remove(1) };
        let hints = RequestHints { accept: accept.as_deref(), width: w.as_deref(), dpr: w.as_deref(), ..RequestHints::default() };
        for prefix in ["/_", "/_/plain", ""] {
            let path = format!("{prefix}{s}");
            if let Ok(req) = parse_request(&path, &hints, &settings, NOW) {
                prop_assert!(parse_canonical(&req.canonical, &settings, NOW).is_ok(), "{}", req.canonical);
            }
        }
    }
}

/// Guards the generators: most generated URLs must parse, or the round-trip
/// property would hold vacuously.
#[test]
fn generators_mostly_produce_valid_urls() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (prop::collection::vec(option(), 0..8), source(), 0usize..2);
    let (mut ok, total) = (0, 500);
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..total {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let (opts, src, route) = tree.current();
        let path = format!("/_/{}/{src}", opts.join("/"));
        match parse_request(&path, &RequestHints::default(), &routes()[route], NOW) {
            Ok(_) => ok += 1,
            Err(e) => {
                *errors
                    .entry(e.to_string().chars().take(40).collect())
                    .or_default() += 1
            }
        }
    }
    assert!(
        ok * 10 >= total * 7,
        "only {ok}/{total} parsed; errors: {errors:#?}"
    );
}
