//! `imgforge --check`: every bad config is refused with file, line, key and what was expected.

use std::process::Command;

const SITE: &str =
    "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nservers = [\"127.0.0.1:1\"]\n";

fn check(text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgforge"));
    cmd.arg("--check").arg("-c").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run imgforge");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn valid_config_passes() {
    let (code, out) = check(SITE, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration is valid"));
}

#[test]
fn demo_and_default_configs_are_valid() {
    for conf in ["conf/demo.toml", "conf/imgforge.toml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_imgforge"))
            .args(["--check", "-c", conf])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{conf}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_configs_are_refused_with_precise_messages() {
    let root_file = tempfile::NamedTempFile::new().expect("file");
    let root_file = root_file.path().display().to_string();
    let imgproxy = |extra: &str| {
        format!("{SITE}[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\n{extra}\n")
    };
    // (config text, expected fragments: the first is the position "bad.toml:LINE:")
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("[server]\nthreads = 2\nlisten_on = [\"x\"]\n{SITE}"),
            vec!["bad.toml:3:", "key `server.listen_on`", "unknown field"],
        ),
        (
            format!("[server]\nthreads = \"two\"\n{SITE}"),
            vec!["bad.toml:2:", "key `server.threads`", "invalid type"],
        ),
        (
            format!("[server]\ngrace_period = \"5 parsecs\"\n{SITE}"),
            vec![
                "bad.toml:2:",
                "server.grace_period",
                "invalid duration",
                "e.g. \"5s\"",
            ],
        ),
        (
            format!("[server]\nmax_url_length = \"100\"\nmax_header_size = 512\n{SITE}"),
            vec![
                "bad.toml:",
                "server.max_url_length",
                "at least 256 bytes",
                "server.max_header_size",
                "at least 1KiB",
            ],
        ),
        (
            format!("[cache]\nmemory_size = \"12XB\"\n{SITE}"),
            vec!["bad.toml:2:", "cache.memory_size", "invalid size", "256MiB"],
        ),
        (
            format!("[server]\nlisten = [\"localhost\"]\n{SITE}"),
            vec!["bad.toml:2:", "server.listen", "expected IP:PORT"],
        ),
        (
            format!(
                "[server]\nlisten = [\"127.0.0.1:7000\"]\nadmin_listen = \"127.0.0.1:7000\"\n{SITE}"
            ),
            vec!["bad.toml:3:", "server.admin_listen", "its own address"],
        ),
        (
            "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nlb = \"round_robin\"\n"
                .into(),
            vec!["bad.toml:4:", "site.origin", "expected servers"],
        ),
        (
            format!("{SITE}root = \"/tmp\"\n"),
            vec!["bad.toml:6:", "site.origin", "either servers or root"],
        ),
        (
            format!(
                "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nroot = \"{root_file}\"\n"
            ),
            vec!["bad.toml:5:", "site.origin.root", "is not a directory"],
        ),
        (
            SITE.replace("\"a.test\"", "\"http://a.test\""),
            vec!["bad.toml:3:", "site.hosts", "invalid host", "no scheme"],
        ),
        (
            format!("{SITE}{}", SITE.replace("name = \"a\"", "name = \"b\"")),
            vec!["bad.toml:8:", "site.hosts", "claimed by two sites"],
        ),
        (
            format!("{SITE}{}", SITE.replace("a.test", "b.test")),
            vec!["bad.toml:7:", "site.name", "duplicate site name"],
        ),
        (
            format!(
                "{}{}",
                SITE.replace("[site.origin]", "default = true\n[site.origin]"),
                SITE.replace("name = \"a\"", "name = \"b\"")
                    .replace("a.test", "b.test")
                    .replace("[site.origin]", "default = true\n[site.origin]")
            ),
            vec!["bad.toml:", "site.default", "more than one site"],
        ),
        (
            SITE.replace(
                "servers = [\"127.0.0.1:1\"]",
                "servers = [\"http://10.0.0.1:80\"]",
            ),
            vec!["bad.toml:5:", "site.origin.servers", "expected HOST:PORT"],
        ),
        (
            format!("{SITE}health_check = {{ path = \"healthz\" }}\n"),
            vec![
                "bad.toml:",
                "site.origin.health_check.path",
                "must start with '/'",
            ],
        ),
        (
            format!("{SITE}[[site.route]]\nprefix = \"img\"\n"),
            vec!["bad.toml:7:", "site.route.prefix", "starting with '/'"],
        ),
        (
            format!("{SITE}[[site.route]]\nprefix = \"/\"\nkey = [\"00\"]\n"),
            vec![
                "bad.toml:6:",
                "site.route.key",
                "only to routes with kind = \"imgproxy\"",
            ],
        ),
        (
            imgproxy(""),
            vec!["bad.toml:6:", "site.route.key", "needs key and salt"],
        ),
        (
            imgproxy("key = [\"zz\"]\nsalt = [\"00\"]"),
            vec!["bad.toml:6:", "site.route.key", "not a hex string"],
        ),
        (
            imgproxy("key = [\"00\", \"11\"]\nsalt = [\"00\"]"),
            vec!["bad.toml:6:", "2 keys but 1 salts"],
        ),
        (
            imgproxy("allow_unsigned = true\nsignature_size = 40"),
            vec![
                "bad.toml:6:",
                "site.route.signature_size",
                "expected 1 to 32",
            ],
        ),
        (
            imgproxy("allow_unsigned = true\nallowed_sources = [\"https://cdn.test\"]"),
            vec![
                "bad.toml:6:",
                "site.route.allowed_sources",
                "must end with '/'",
            ],
        ),
        (
            imgproxy("allow_unsigned = true\nrate_limit = { rate = \"10 per second\" }"),
            vec!["bad.toml:6:", "site.route.rate_limit.rate", "expected N/s"],
        ),
        (
            imgproxy("allow_unsigned = true\nkind_of = 1"),
            vec!["bad.toml:10:", "unknown field `kind_of`"],
        ),
        (
            format!("{SITE}[[site.route]]\nprefix = \"/\"\nkind = \"resize\"\n"),
            vec![
                "bad.toml:8:",
                "site.route.kind",
                "unknown variant `resize`",
                "imgproxy",
            ],
        ),
        (
            format!("[log]\nformat = \"xml\"\n{SITE}"),
            vec!["bad.toml:2:", "log.format", "unknown variant", "json"],
        ),
        ("[server\nthreads = 2\n".into(), vec!["bad.toml:1:"]),
        (
            format!("[metrics]\nnamespace = \"imgforge\"\n{SITE}"),
            vec!["bad.toml:", "metrics.namespace", "collide"],
        ),
        (
            format!("[metrics]\nnamespace = \"img-proxy\"\n{SITE}"),
            vec!["bad.toml:", "metrics.namespace", "invalid namespace"],
        ),
        (
            "[server]\n".into(),
            vec!["bad.toml:", "no [[site]] configured"],
        ),
        (
            format!("[server]\nadmin_token_file = \"/nonexistent/token\"\n{SITE}"),
            vec![
                "bad.toml:",
                "server.admin_token_file",
                "cannot read /nonexistent/token",
            ],
        ),
        (
            format!("[tracing]\nsample_ratio = 1.5\n{SITE}"),
            vec!["bad.toml:", "tracing.sample_ratio", "expected 0.0"],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        let (code, out) = check(text, &[]);
        let missing: Vec<&&str> = want.iter().filter(|w| !out.contains(**w)).collect();
        if code != 1 || !missing.is_empty() {
            failures.push(format!("case {i}: exit {code}, missing {missing:?}\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn environment_overrides_are_validated_and_named() {
    let (code, out) = check(SITE, &[("IMGFORGE_TRANSFORM_TIMEOUT", "soon")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("environment variable IMGFORGE_TRANSFORM_TIMEOUT"),
        "{out}"
    );
    let (code, out) = check(SITE, &[("IMGFORGE_SERVER_LISTEN", "nowhere")]);
    assert_eq!(code, 1);
    assert!(out.contains("expected IP:PORT"), "{out}");
    let (code, _) = check(SITE, &[("IMGFORGE_SERVER_THREADS", "4")]);
    assert_eq!(code, 0);
}

#[test]
fn otlp_endpoint_needs_the_otlp_feature() {
    let text = format!("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\n{SITE}");
    let (code, out) = check(&text, &[]);
    if cfg!(feature = "otlp") {
        assert_eq!(code, 0, "{out}");
        let bad = format!("[tracing]\notlp_endpoint = \"grpc://127.0.0.1:4317\"\n{SITE}");
        let (code, out) = check(&bad, &[]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("bad.toml:2:") && out.contains("expected http://"),
            "{out}"
        );
    } else {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("built without the `otlp` feature"), "{out}");
    }
    // Empty (e.g. from the environment) means no export, with or without the feature.
    let (code, out) = check(SITE, &[("IMGFORGE_TRACING_OTLP_ENDPOINT", "")]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn missing_file_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_imgforge"))
        .args(["--check", "-c", "/nonexistent/imgforge.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/imgforge.toml: cannot read config file"),
        "{err}"
    );
}
