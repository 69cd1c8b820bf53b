//! docs/configuration.md documents every key the schema accepts. The key lists come from the
//! schema itself: a bogus key in each table makes serde list the expected ones.

use std::path::Path;

const SITE: &str =
    "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nservers = [\"127.0.0.1:1\"]\n";

fn keys_of(toml_with_bogus: &str) -> Vec<String> {
    let errs = imgforge::config::parse(Path::new("x.toml"), toml_with_bogus, |_| None)
        .expect_err("bogus key must be rejected");
    let msg = errs[0].message.clone();
    let list = msg
        .split_once("expected one of ")
        .or_else(|| msg.split_once("expected "))
        .map(|(_, l)| l.to_string())
        .unwrap_or_else(|| panic!("no key list in {msg}"));
    list.replace(" or ", ", ")
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn every_schema_key_is_documented() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    let tables: Vec<(&str, String)> = vec![
        ("top level", format!("bogus = 1\n{SITE}")),
        ("[server]", format!("[server]\nbogus = 1\n{SITE}")),
        (
            "[server.tls]",
            format!(
                "[server.tls]\nlisten = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nbogus = 1\n{SITE}"
            ),
        ),
        ("[log]", format!("[log]\nbogus = 1\n{SITE}")),
        ("[transform]", format!("[transform]\nbogus = 1\n{SITE}")),
        ("[cache]", format!("[cache]\nbogus = 1\n{SITE}")),
        ("[metrics]", format!("[metrics]\nbogus = 1\n{SITE}")),
        ("[tracing]", format!("[tracing]\nbogus = 1\n{SITE}")),
        (
            "[cluster]",
            format!("[cluster]\nredis = \"redis://127.0.0.1:1\"\nbogus = 1\n{SITE}"),
        ),
        ("[[site]]", SITE.replace("hosts =", "bogus = 1\nhosts =")),
        ("[site.origin]", format!("{SITE}bogus = 1\n")),
        (
            "health_check",
            format!("{SITE}health_check = {{ bogus = 1 }}\n"),
        ),
        (
            "[[site.route]]",
            format!("{SITE}[[site.route]]\nprefix = \"/\"\nbogus = 1\n"),
        ),
        (
            "rate_limit",
            format!(
                "{SITE}[[site.route]]\nprefix = \"/\"\nrate_limit = {{ rate = \"1/s\", bogus = 1 }}\n"
            ),
        ),
    ];
    let mut missing = Vec::new();
    for (table, text) in &tables {
        let keys = keys_of(text);
        assert!(!keys.is_empty(), "{table}: no keys found");
        for k in keys {
            let documented = doc.contains(&format!("`{k}`"))
                || doc.contains(&format!("{k} ="))
                || doc.contains(&format!("[{k}"));
            if !documented {
                missing.push(format!("{table}: {k}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}
