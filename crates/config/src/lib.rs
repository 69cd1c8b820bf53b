//! Configuration: the TOML schema users write ([`schema`]), validated once into the runtime model
//! the code uses ([`model`]).
//!
//! Loading order: read the file → deserialize (unknown keys rejected, with file:line) → apply
//! `IMGFORGE_*` environment overrides → read `*_file` secrets → validate.

mod env;
mod error;
pub mod metrics;
pub mod model;
pub mod net;
pub mod schema;
mod traces;
pub mod units;

use std::path::Path;

pub use env::VARIABLES as ENV_VARIABLES;
pub use error::{ConfigError, Origin as ErrorOrigin};
pub use model::*;
pub use traces::{OTLP_BUILT_IN, TracingSettings};

use error::Locator;

/// Loads and validates a config file, with overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_with_env(path, |k| std::env::var(k).ok())
}

/// [`load`] with an explicit environment (tests use this instead of mutating the process's).
pub fn load_with_env(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            origin: ErrorOrigin::FileWhole(path.to_path_buf()),
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        }]
    })?;
    parse(path, &text, env)
}

/// Parses config text as if read from `path` (relative paths in it are relative to `path`'s
/// directory).
pub fn parse(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    parse_with(
        Locator {
            path,
            text,
            resolve_names: true,
        },
        env,
    )
}

/// [`parse`] without the network and without environment overrides: origin servers given by
/// host name are not looked up and carry the unspecified address (`0.0.0.0`) with their port,
/// so the result is for checking only, never for serving. For fuzzing and offline checks.
/// Files the config names (`*_file`, `watermark`) are still read.
pub fn parse_offline(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_with(
        Locator {
            path,
            text,
            resolve_names: false,
        },
        |_| None,
    )
}

fn parse_with(
    loc: Locator<'_>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let text = loc.text;
    let mut file: schema::FileConfig =
        toml::from_str(text).map_err(|e| vec![loc.toml_error(&e)])?;
    env::apply(&mut file, env).map_err(|e| vec![e])?;
    read_secret_files(&mut file, &loc)?;
    model::build(file, &loc)
}

/// Resolves every `<key>_file = PATH` into its key; giving both is an error.
fn read_secret_files(
    file: &mut schema::FileConfig,
    loc: &Locator<'_>,
) -> Result<(), Vec<ConfigError>> {
    let mut errs = Vec::new();
    let read = |p: &Path, key: &str, errs: &mut Vec<ConfigError>| -> Option<String> {
        match std::fs::read_to_string(p) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push(loc.whole(key, format!("cannot read {}: {e}", p.display())));
                None
            }
        }
    };
    let s = &mut file.server;
    if let Some(p) = s.admin_token_file.take() {
        if s.admin_token.is_some() {
            errs.push(loc.whole(
                "server.admin_token_file",
                "give admin_token or admin_token_file, not both",
            ));
        }
        s.admin_token = read(&loc.resolve(&p), "server.admin_token_file", &mut errs)
            .map(|t| t.trim().to_string());
    }
    for site in &mut file.site {
        for route in &mut site.get_mut().route {
            let route = route.get_mut();
            for (name, inline, path) in [
                ("key", &mut route.key, route.key_file.take()),
                ("salt", &mut route.salt, route.salt_file.take()),
                (
                    "auth_token",
                    &mut route.auth_token,
                    route.auth_token_file.take(),
                ),
            ] {
                let Some(p) = path else { continue };
                let key = format!("site.route.{name}_file");
                if inline.is_some() {
                    errs.push(loc.whole(&key, format!("give {name} or {name}_file, not both")));
                }
                if let Some(text) = read(&loc.resolve(&p), &key, &mut errs) {
                    *inline = Some(
                        text.split(|c: char| c.is_whitespace() || c == ',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    );
                }
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, Vec<ConfigError>> {
        parse(Path::new("test.toml"), text, |_| None)
    }

    const MINIMAL: &str = r#"
[[site]]
name = "a"
hosts = ["a.test"]
[site.origin]
servers = ["127.0.0.1:1"]
"#;

    #[test]
    fn minimal_config_has_defaults() {
        let cfg = parse_str(MINIMAL).expect("valid");
        assert_eq!(cfg.server.grace_period.as_secs(), 5);
        assert_eq!(cfg.sites[0].routes[0].prefix, "/");
        assert_eq!(cfg.cache.memory_size, 256 << 20);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = format!("[server]\nthreads = 2\nlisten_on = 1\n{MINIMAL}");
        let errs = parse_str(&text).expect_err("unknown key");
        let msg = errs[0].to_string();
        assert!(
            msg.starts_with("test.toml:3:1: key `server.listen_on`"),
            "{msg}"
        );
        assert!(msg.contains("unknown field"), "{msg}");
    }

    /// Found by the config_parser fuzz target: a carriage return not followed by a newline.
    #[test]
    fn every_error_has_a_message() {
        let errs = parse_offline(
            Path::new("test.toml"),
            "\r\0\0\0[serveh]rt\nreads =/nonexistent\"\nservers = []\n",
        )
        .expect_err("invalid");
        for e in &errs {
            assert!(!e.message.trim().is_empty(), "{e:?}");
        }
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        let salt = dir.path().join("salt");
        std::fs::write(&key, "736563726574\n").expect("write");
        std::fs::write(&salt, "68656C6C6F\n").expect("write");
        let text = format!(
            "{MINIMAL}[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nkey_file = {:?}\nsalt_file = {:?}\n",
            key.display().to_string(),
            salt.display().to_string()
        );
        let cfg = parse_str(&text).expect("valid");
        let RouteKind::Imgproxy(r) = &cfg.sites[0].routes[0].kind else {
            panic!("expected imgproxy route")
        };
        let r = &r.settings;
        assert_eq!(r.key_pairs.len(), 1);
        let sig = imgforge_imgproxy::sign_path(
            &r.key_pairs[0],
            "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
            32,
        );
        assert_eq!(sig, "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8");
    }
}
