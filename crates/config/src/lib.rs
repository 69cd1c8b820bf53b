//! Configuration: the TOML schema users write ([`schema`]), validated once into the runtime model
//! the code uses ([`model`]); or, without a config file, the same schema built from the
//! environment alone ([`from_env`]).
//!
//! Loading order: read the file (or build it from the environment) → deserialize (unknown keys
//! rejected, with file:line) → apply `IMGFORGE_*` environment overrides → read `*_file` secrets
//! → validate (pure, [`model`]) → resolve (origin names looked up, named files checked and read:
//! the `resolve` module). [`load_source`] does it all; `--print-config` prints the schema it
//! validated ([`Loaded::to_toml`]).

mod env;
mod error;
pub mod from_env;
mod load;
pub mod metrics;
pub mod model;
pub mod net;
mod print;
mod resolve;
pub mod schema;
mod traces;
pub mod units;

use std::path::Path;

pub use env::VARIABLES as ENV_VARIABLES;
pub use error::{ConfigError, Origin as ErrorOrigin};
pub use from_env::{Vars, config_from_env};
pub use load::{ENVIRONMENT, Loaded, load_source, load_source_offline, process_vars, reload};
pub use model::*;
pub use print::MASK;
pub use traces::{OTLP_BUILT_IN, TracingSettings};

use error::Locator;

/// Loads and validates a config file, with overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_source(&Source::File(path.to_path_buf()), &process_vars()).map(|l| l.config)
}

/// Loads a config file with an explicit environment for its overrides (tests use this instead
/// of mutating the process's).
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
        Locator { path, text },
        env,
        resolve::Options { lookup_names: true },
    )
}

/// [`parse`] without the network and without environment overrides: origin servers given by
/// host name are not looked up and carry the unspecified address (`0.0.0.0`) with their port,
/// so the result is for checking only, never for serving. For fuzzing and offline checks.
/// Files the config names (`*_file`, `watermark`) are still read.
pub fn parse_offline(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_with(
        Locator { path, text },
        |_| None,
        resolve::Options {
            lookup_names: false,
        },
    )
}

/// Validation alone, with no I/O at all: the schema (secrets inline, `*_file` keys already read)
/// into the model. Origin servers given by name keep the unspecified address and watermarks are
/// not read: see [`parse`] for a model to serve with.
pub fn validate(
    path: &Path,
    text: &str,
    file: schema::FileConfig,
) -> Result<Config, Vec<ConfigError>> {
    model::build(file, &Locator { path, text })
}

fn parse_with(
    loc: Locator<'_>,
    env: impl Fn(&str) -> Option<String>,
    opts: resolve::Options,
) -> Result<Config, Vec<ConfigError>> {
    let text = loc.text;
    let mut file: schema::FileConfig =
        toml::from_str(text).map_err(|e| vec![loc.toml_error(&e)])?;
    env::apply(&mut file, env).map_err(|e| vec![e])?;
    resolve::secret_files(&mut file, &loc)?;
    finish(file, &loc, opts)
}

/// Validation, then the resolve step: every error of both (validation's first).
pub(crate) fn finish(
    file: schema::FileConfig,
    loc: &Locator<'_>,
    opts: resolve::Options,
) -> Result<Config, Vec<ConfigError>> {
    let mut io_errors = Vec::new();
    let resolved = resolve::check(&file, loc, opts, &mut io_errors);
    match model::build(file, loc) {
        Ok(mut config) if io_errors.is_empty() => {
            resolved.apply(&mut config);
            Ok(config)
        }
        Ok(_) => Err(io_errors),
        Err(mut errs) => {
            errs.extend(io_errors);
            Err(errs)
        }
    }
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

    /// Validation reads no file and looks no name up: a config naming files that do not exist and
    /// an origin that could never resolve is valid to it; the resolve step reports each, at its
    /// key and line.
    #[test]
    fn validation_alone_does_no_io() {
        let text = r#"
[server.tls]
listen = "127.0.0.1:8443"
cert = "/nonexistent/c.pem"
key = "/nonexistent/k.pem"

[[site]]
name = "a"
hosts = ["a.test"]
[site.origin]
servers = ["origin.invalid:8080", "127.0.0.1:81"]
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
watermark = "/nonexistent/wm.png"

[[site]]
name = "b"
hosts = ["b.test"]
[site.origin]
root = "/nonexistent/dir"
"#;
        let file: schema::FileConfig = toml::from_str(text).expect("schema");
        let cfg = validate(Path::new("t.toml"), text, file).expect("valid without I/O");
        let Origin::Servers(up) = &cfg.sites[0].origin else {
            panic!("servers")
        };
        assert_eq!(up.servers[0].addr, "0.0.0.0:8080".parse().expect("addr"));
        assert_eq!(up.servers[1].addr, "127.0.0.1:81".parse().expect("addr"));
        let RouteKind::Imgproxy(image) = &cfg.sites[0].routes[0].kind else {
            panic!("imgproxy")
        };
        assert!(image.watermark.is_none());
        assert_eq!(
            image.watermark_file.as_deref(),
            Some(Path::new("/nonexistent/wm.png"))
        );

        // Offline: the files are checked, the name is not looked up.
        let errs = parse_offline(Path::new("t.toml"), text).expect_err("missing files");
        let found: Vec<String> = errs.iter().map(ToString::to_string).collect();
        for want in [
            "t.toml:2:1: key `server.tls.cert`: file /nonexistent/c.pem does not exist",
            "t.toml:2:1: key `server.tls.key`: file /nonexistent/k.pem does not exist",
            "t.toml:12:1: key `site.route.watermark`: cannot read /nonexistent/wm.png",
            "t.toml:22:8: key `site.origin.root`: /nonexistent/dir is not a directory",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(want)),
                "{want} in {found:#?}"
            );
        }
        assert_eq!(found.len(), 4, "{found:#?}");
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
