//! The environment mode's mapping, variable by variable (pure: no process environment).

use super::values::bind;
use super::*;
use crate::{Origin as SiteOrigin, RouteKind};

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok(pairs: &[(&str, &str)]) -> FromEnv {
    config_from_env(&vars(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e:?}"))
}

fn err(pairs: &[(&str, &str)]) -> String {
    match config_from_env(&vars(pairs)) {
        Ok(_) => panic!("{pairs:?} accepted"),
        Err(errs) => errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The schema validated with no I/O, as the loader would.
fn validated(env: &FromEnv) -> crate::Config {
    crate::validate(Path::new("environment"), "", env.file.clone())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

use std::path::Path;

const SIGNED: &[(&str, &str)] = &[
    ("IMGFORGE_KEY", "736563726574"),
    ("IMGFORGE_SALT", "68656c6c6f"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    SIGNED.iter().chain(extra).copied().collect()
}

#[test]
fn the_seed_guide_environment() {
    let env = ok(&with(&[
        ("IMGFORGE_SECRET", "a-bearer-token-of-some-length"),
        ("IMGFORGE_CACHE_TYPE", "hybrid"),
        ("IMGFORGE_CACHE_DISK_PATH", "/var/cache/imgforge"),
        ("IMGFORGE_PROMETHEUS_BIND", "9000"),
        ("IMGFORGE_MAX_SRC_FILE_SIZE", "10485760"),
        ("IMGFORGE_MAX_SRC_RESOLUTION", "25.5"),
        ("IMGFORGE_RATE_LIMIT_PER_MINUTE", "600"),
        (
            "IMGFORGE_ALLOWED_MIME_TYPES",
            "image/jpeg,image/png,image/webp,image/gif,image/avif,image/heif,image/tiff",
        ),
    ]));
    assert!(env.warnings.is_empty(), "{:?}", env.warnings);
    let f = &env.file;
    assert_eq!(f.server.listen[0].get_ref(), "0.0.0.0:3000");
    assert_eq!(f.server.admin_listen.get_ref(), "0.0.0.0:9000");
    assert!(f.server.public_health);
    assert_eq!(
        f.server.global_rate_limit.as_ref().map(|r| r.rate.as_str()),
        Some("600/m")
    );
    assert_eq!(f.transform.max_src_file_size, ByteSize(10 << 20));
    assert_eq!(f.transform.max_src_resolution, 25.5);
    assert_eq!(f.cache.memory_size, ByteSize(256 << 20));
    let c = validated(&env);
    let site = &c.sites[0];
    assert!(site.default && site.hosts.is_empty());
    assert!(matches!(site.origin, SiteOrigin::None));
    let route = &site.routes[0];
    assert_eq!(route.prefix, "/");
    assert_eq!(route.auth_tokens, vec!["a-bearer-token-of-some-length"]);
    let RouteKind::Imgproxy(image) = &route.kind else {
        panic!("imgproxy route")
    };
    assert_eq!(image.settings.key_pairs.len(), 1);
    assert!(!image.settings.allow_unsigned);
}

#[test]
fn cache_types() {
    let memory = ok(&with(&[("IMGFORGE_CACHE_TYPE", "memory")]));
    assert_eq!(memory.file.cache.memory_size, ByteSize(256 << 20));
    let none = ok(SIGNED);
    assert_eq!(none.file.cache.memory_size, ByteSize(0));
    let disk = ok(&with(&[
        ("IMGFORGE_CACHE_TYPE", "disk"),
        ("IMGFORGE_CACHE_DISK_PATH", "/c"),
    ]));
    assert_eq!(disk.file.cache.memory_size, ByteSize(0));
    assert!(
        err(&with(&[("IMGFORGE_CACHE_TYPE", "disk")])).contains("needs IMGFORGE_CACHE_DISK_PATH")
    );
    assert!(
        err(&with(&[("IMGFORGE_CACHE_TYPE", "redis")]))
            .contains("IMGFORGE_CACHE_TYPE: \"redis\": expected memory, disk or hybrid")
    );
    assert!(
        err(&with(&[
            ("IMGFORGE_CACHE_TYPE", "memory"),
            ("IMGFORGE_CACHE_DISK_PATH", "/c")
        ]))
        .contains("IMGFORGE_CACHE_DISK_PATH")
    );
}

#[test]
fn the_imgproxy_environment() {
    let env = ok(&[
        ("IMGPROXY_KEY", "736563726574,6b6579"),
        ("IMGPROXY_SALT", "68656c6c6f,73616c74"),
        ("IMGPROXY_SIGNATURE_SIZE", "8"),
        (
            "IMGPROXY_ALLOWED_SOURCES",
            "https://cdn.example.com/,s3://bucket/",
        ),
        ("IMGPROXY_MAX_SRC_RESOLUTION", "16.8"),
        ("IMGPROXY_MAX_SRC_FILE_SIZE", "5000000"),
        ("IMGPROXY_WORKERS", "3"),
        ("IMGPROXY_TTL", "31536000"),
        ("IMGPROXY_QUALITY", "75"),
        ("IMGPROXY_FORMAT_QUALITY", "jpeg=70,webp=60,avif=50"),
        ("IMGPROXY_ENABLE_WEBP_DETECTION", "true"),
        ("IMGPROXY_ENABLE_AVIF_DETECTION", "1"),
        (
            "IMGPROXY_PRESETS",
            "thumb=rs:fill:200:200/q:75,banner=rs:fit:1200:300",
        ),
        ("IMGPROXY_ONLY_PRESETS", "false"),
        ("IMGPROXY_PROMETHEUS_BIND", ":9464"),
        ("IMGPROXY_PROMETHEUS_NAMESPACE", "imgproxy"),
        ("IMGPROXY_USE_ETAG", "true"),
        ("IMGPROXY_SECRET", "0123456789abcdef0123"),
    ]);
    assert!(env.warnings.is_empty(), "{:?}", env.warnings);
    let f = &env.file;
    // imgproxy's default port when the environment speaks only its dialect.
    assert_eq!(f.server.listen[0].get_ref(), "0.0.0.0:8080");
    assert_eq!(f.server.admin_listen.get_ref(), "0.0.0.0:9464");
    assert_eq!(f.transform.workers, 3);
    assert_eq!(f.metrics.namespace, "imgproxy");
    let c = validated(&env);
    let RouteKind::Imgproxy(image) = &c.sites[0].routes[0].kind else {
        panic!("imgproxy route")
    };
    let s = &image.settings;
    assert_eq!(s.key_pairs.len(), 2);
    assert_eq!(s.signature_size, 8);
    assert_eq!(s.allowed_sources.len(), 2);
    assert_eq!(s.quality, 75);
    assert_eq!(s.format_quality.len(), 3);
    assert!(s.auto_webp && s.auto_avif && !s.only_presets);
    assert_eq!(
        c.sites[0].routes[0].cache.as_ref().map(|p| p.max_ttl),
        Some(Duration::from_secs(31_536_000))
    );
}

#[test]
fn local_root_and_base_url_become_the_origin() {
    let env = ok(&[
        ("IMGPROXY_LOCAL_FILESYSTEM_ROOT", "/srv/images"),
        ("IMGFORGE_ALLOW_UNSIGNED", "true"),
    ]);
    let o = env.file.site[0].get_ref().origin.as_ref().expect("origin");
    assert_eq!(
        o.get_ref().root.as_ref().map(|r| r.get_ref().clone()),
        Some(PathBuf::from("/srv/images"))
    );
    let env = ok(&with(&[(
        "IMGPROXY_BASE_URL",
        "https://images.example.com/",
    )]));
    let o = env.file.site[0]
        .get_ref()
        .origin
        .as_ref()
        .expect("origin")
        .get_ref();
    assert_eq!(o.servers[0].get_ref(), "images.example.com:443");
    assert!(o.tls);
    assert_eq!(o.host_header.as_deref(), Some("images.example.com"));
    assert!(
        err(&with(&[("IMGPROXY_BASE_URL", "http://a.example/images/")]))
            .contains("with a path is not supported")
    );
    assert!(
        err(&with(&[
            ("IMGPROXY_BASE_URL", "http://a.example/"),
            ("IMGPROXY_LOCAL_FILESYSTEM_ROOT", "/srv")
        ]))
        .contains("both given")
    );
}

#[test]
fn listen_addresses() {
    assert_eq!(bind("3000"), Ok("0.0.0.0:3000".into()));
    assert_eq!(bind(":8080"), Ok("0.0.0.0:8080".into()));
    assert_eq!(bind("127.0.0.1:81"), Ok("127.0.0.1:81".into()));
    assert_eq!(bind("[::1]:81"), Ok("[::1]:81".into()));
    for bad in ["localhost:80", "/run/imgproxy.sock", "x", ":99999"] {
        assert!(bind(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_values_name_their_variable() {
    for (var, value, want) in [
        (
            "IMGFORGE_KEY",
            "not-hex",
            "environment variable IMGFORGE_KEY: entry 1 is not a hex string",
        ),
        (
            "IMGFORGE_MAX_SRC_FILE_SIZE",
            "lots",
            "environment variable IMGFORGE_MAX_SRC_FILE_SIZE: invalid size",
        ),
        (
            "IMGFORGE_MAX_SRC_FILE_SIZE",
            "0",
            "would refuse every source",
        ),
        (
            "IMGFORGE_MAX_SRC_RESOLUTION",
            "-1",
            "environment variable IMGFORGE_MAX_SRC_RESOLUTION: invalid value",
        ),
        (
            "IMGFORGE_ALLOW_UNSIGNED",
            "maybe",
            "environment variable IMGFORGE_ALLOW_UNSIGNED: invalid boolean",
        ),
        (
            "IMGFORGE_RATE_LIMIT_PER_MINUTE",
            "fast",
            "environment variable IMGFORGE_RATE_LIMIT_PER_MINUTE: invalid number",
        ),
        (
            "IMGFORGE_SECRET",
            "short",
            "environment variable IMGFORGE_SECRET: must be at least 16",
        ),
        (
            "IMGPROXY_SIGNATURE_SIZE",
            "64",
            "environment variable IMGPROXY_SIGNATURE_SIZE: 64 is out of range",
        ),
        (
            "IMGPROXY_BIND",
            "/tmp/s.sock",
            "environment variable IMGPROXY_BIND: \"/tmp/s.sock\": listening on a Unix socket",
        ),
        (
            "IMGPROXY_ALLOWED_SOURCES",
            "https://cdn.example.com",
            "must end with '/'",
        ),
        (
            "IMGPROXY_FORMAT_QUALITY",
            "xyz=10",
            "unknown format \"xyz\"",
        ),
        ("IMGPROXY_PRESETS", "thumb", "expected NAME=OPTIONS"),
        ("IMGPROXY_PROMETHEUS_NAMESPACE", "imgforge", "collide"),
        ("IMGPROXY_MAX_REDIRECTS", "2", "cannot lower it to 2"),
        (
            "IMGFORGE_ALLOWED_MIME_TYPES",
            "image/jpeg,text/html",
            "is not an image type",
        ),
    ] {
        let text = err(&with(&[(var, value)]));
        assert!(text.contains(want), "{var}={value}: {text}");
    }
}

#[test]
fn keys_salts_and_unsigned() {
    assert!(err(&[]).contains("environment variable IMGFORGE_KEY: not set"));
    assert!(err(&[("IMGFORGE_KEY", "aa")]).contains("a key needs its salt"));
    assert!(
        err(&[("IMGFORGE_KEY", "aa,bb"), ("IMGFORGE_SALT", "cc")])
            .contains("2 key(s) but 1 salt(s)")
    );
    let open = ok(&[("IMGFORGE_ALLOW_UNSIGNED", "yes")]);
    let c = validated(&open);
    let RouteKind::Imgproxy(image) = &c.sites[0].routes[0].kind else {
        panic!("imgproxy route")
    };
    assert!(image.settings.allow_unsigned && image.settings.key_pairs.is_empty());
}

#[test]
fn two_names_of_one_setting_must_agree() {
    ok(&with(&[
        ("IMGPROXY_KEY", "736563726574"),
        ("IMGPROXY_SALT", "68656c6c6f"),
    ]));
    assert!(err(&with(&[("IMGPROXY_KEY", "aa")])).contains(
        "environment variable IMGPROXY_KEY: IMGFORGE_KEY sets the same thing to another value"
    ));
    // A setting and the override of the same key.
    assert!(
        err(&with(&[
            ("IMGFORGE_BIND", "3001"),
            ("IMGFORGE_SERVER_LISTEN", "0.0.0.0:3002")
        ]))
        .contains("IMGFORGE_SERVER_LISTEN")
    );
    // The override alone is applied later by the override mechanism.
    let env = ok(&with(&[("IMGFORGE_SERVER_LISTEN", "127.0.0.1:3002")]));
    assert_eq!(env.file.server.listen[0].get_ref(), "0.0.0.0:3000");
}

#[test]
fn unknown_variables_are_reported() {
    let env = ok(&with(&[
        ("IMGPROXY_USER_AGENT", "x"),
        ("IMGPROXY_SANITIZE_SVG", "true"),
        ("IMGFORGE_CACHE_MEMORY_CAPACITY", "1000"),
        ("IMGFORGE_LOG", "debug"),
        ("IMGFORGE_SERVER_THREADS", "2"),
    ]));
    let w = env.warnings.join("\n");
    assert!(
        w.contains("IMGPROXY_USER_AGENT is not a setting imgforge reads"),
        "{w}"
    );
    assert!(
        w.contains("IMGPROXY_SANITIZE_SVG is ignored: imgforge never decodes SVG"),
        "{w}"
    );
    assert!(w.contains("IMGFORGE_CACHE_MEMORY_CAPACITY"), "{w}");
    assert_eq!(env.warnings.len(), 3, "{w}");
    for security in [
        "IMGPROXY_SOURCE_URL_ENCRYPTION_KEY",
        "IMGPROXY_MAX_CHUNK_SIZE",
        "IMGPROXY_ALLOWED_PROCESSING_OPTIONS",
    ] {
        let text = err(&with(&[(security, "x")]));
        assert!(
            text.contains(&format!(
                "environment variable {security}: imgforge does not support"
            )),
            "{text}"
        );
    }
}

#[test]
fn only_environment_names_count_as_shortcuts() {
    let set = shortcuts_set(&vars(&[
        ("IMGFORGE_KEY", "aa"),
        ("IMGFORGE_SERVER_THREADS", "2"),
        ("IMGFORGE_CACHE_DISK_PATH", "/c"),
        ("IMGFORGE_LOG_LEVEL", "info"),
        ("IMGPROXY_ANYTHING", "1"),
        ("PATH", "/bin"),
    ]));
    assert_eq!(set, vec!["IMGFORGE_KEY", "IMGPROXY_ANYTHING"]);
}

#[test]
fn setting_names_are_unique_and_prefixed() {
    let mut seen = std::collections::HashSet::new();
    for s in SETTINGS {
        for n in s.names.iter().chain(s.override_name.iter()) {
            assert!(
                n.starts_with("IMGFORGE_") || n.starts_with("IMGPROXY_"),
                "{n}"
            );
            assert!(seen.insert(*n), "{n} twice");
        }
        if let Some(o) = s.override_name {
            assert!(crate::env::VARIABLES.contains(&o), "{o} is not an override");
        }
        for n in s.names {
            assert!(!crate::env::VARIABLES.contains(n), "{n} is an override");
        }
    }
}
