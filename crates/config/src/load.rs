//! Which configuration to load, and loading it: a file (with `IMGFORGE_<SECTION>_<KEY>`
//! overrides), or the environment alone ([`crate::from_env`]) with the same overrides.
//!
//! The environment is passed in as a map ([`Vars`]), so every rule here is testable without
//! touching the process's environment; [`process_vars`] takes the snapshot.

use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Locator, Origin};
use crate::from_env::{FromEnv, Vars, config_from_env, shortcuts_set};
use crate::model::{Config, Source};
use crate::schema::FileConfig;
use crate::{env, resolve};

/// What error messages call the environment when it stands for the file.
pub const ENVIRONMENT: &str = "environment";

/// A loaded configuration, with what the operator should be told and what it was built from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Variables ignored, and why (print them at start).
    pub warnings: Vec<String>,
    /// The schema as validated (overrides applied, `*_file` keys still paths): what
    /// `--print-config` prints.
    pub schema: FileConfig,
}

impl Source {
    /// The file given (`-c`, or `IMGFORGE_CONFIG`); without one, `default` when it exists;
    /// otherwise the environment.
    pub fn choose(given: Option<PathBuf>, default: &Path) -> Source {
        match given {
            Some(path) => Source::File(path),
            None if default.exists() => Source::File(default.to_path_buf()),
            None => Source::Environment,
        }
    }
}

/// The `IMGFORGE_*` and `IMGPROXY_*` variables of this process (values not valid UTF-8 are kept
/// lossily, so that they fail to parse with their name rather than vanish).
pub fn process_vars() -> Vars {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            (k.starts_with("IMGFORGE_") || k.starts_with("IMGPROXY_"))
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Loads and validates the configuration `source` names, with `vars` as the environment.
pub fn load_source(source: &Source, vars: &Vars) -> Result<Loaded, Vec<ConfigError>> {
    load_with(source, vars, resolve::Options { lookup_names: true })
}

/// [`load_source`] without looking origin names up: for the `health` command, which needs the
/// listeners and must not depend on DNS.
pub fn load_source_offline(source: &Source, vars: &Vars) -> Result<Loaded, Vec<ConfigError>> {
    load_with(
        source,
        vars,
        resolve::Options {
            lookup_names: false,
        },
    )
}

/// Loads the configuration again from where `current` came from (SIGHUP).
pub fn reload(current: &Config) -> Result<Config, Vec<ConfigError>> {
    load_source(&current.source, &process_vars()).map(|l| l.config)
}

fn load_with(
    source: &Source,
    vars: &Vars,
    opts: resolve::Options,
) -> Result<Loaded, Vec<ConfigError>> {
    match source {
        Source::File(path) => load_file(path, vars, opts),
        Source::Environment => load_environment(vars, opts),
    }
}

fn load_file(path: &Path, vars: &Vars, opts: resolve::Options) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            origin: Origin::FileWhole(path.to_path_buf()),
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        }]
    })?;
    let mut errs: Vec<ConfigError> = shortcuts_set(vars)
        .into_iter()
        .map(|var| ConfigError {
            origin: Origin::Env(var),
            key: String::new(),
            message: format!(
                "configures imgforge only when there is no config file, and {} is in use: put \
                 the setting in the file, or start without the file to configure from the \
                 environment (docs/configuration.md)",
                path.display()
            ),
        })
        .collect();
    let loc = Locator { path, text: &text };
    let parsed: Result<FileConfig, ConfigError> =
        toml::from_str(&text).map_err(|e| loc.toml_error(&e));
    let mut file = match parsed {
        Ok(f) if errs.is_empty() => f,
        Ok(_) => return Err(errs),
        Err(e) => {
            errs.push(e);
            return Err(errs);
        }
    };
    env::apply(&mut file, |k| vars.get(k).cloned()).map_err(|e| vec![e])?;
    let schema = file.clone();
    resolve::secret_files(&mut file, &loc)?;
    let config = crate::finish(file, &loc, opts)?;
    Ok(Loaded {
        config,
        warnings: Vec::new(),
        schema,
    })
}

fn load_environment(vars: &Vars, opts: resolve::Options) -> Result<Loaded, Vec<ConfigError>> {
    let FromEnv {
        mut file,
        warnings,
        keys,
    } = config_from_env(vars)?;
    env::apply(&mut file, |k| vars.get(k).cloned()).map_err(|e| vec![e])?;
    let schema = file.clone();
    let path = Path::new(ENVIRONMENT);
    let loc = Locator { path, text: "" };
    resolve::secret_files(&mut file, &loc)?;
    let mut config = crate::finish(file, &loc, opts).map_err(|errs| {
        errs.into_iter()
            .map(|e| name_the_variable(e, path, &keys))
            .collect::<Vec<_>>()
    })?;
    config.source = Source::Environment;
    Ok(Loaded {
        config,
        warnings,
        schema,
    })
}

/// A validation error about a key the environment set names the variable that set it.
fn name_the_variable(
    mut e: ConfigError,
    path: &Path,
    keys: &std::collections::BTreeMap<&'static str, String>,
) -> ConfigError {
    if e.origin != Origin::FileWhole(path.to_path_buf()) {
        return e;
    }
    let var = keys.get(e.key.as_str()).or_else(|| {
        keys.iter()
            .filter(|(k, _)| e.key.starts_with(&format!("{k}.")))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, v)| v)
    });
    if let Some(var) = var {
        e.origin = Origin::Env(var.clone());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_and_an_environment_shortcut_do_not_mix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("imgforge.toml");
        std::fs::write(
            &path,
            "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nservers = [\"127.0.0.1:1\"]\n",
        )
        .expect("write");
        let source = Source::File(path.clone());
        // Overrides are fine with a file…
        let ok = load_source(&source, &vars(&[("IMGFORGE_SERVER_THREADS", "3")]))
            .expect("override with a file");
        assert_eq!(ok.config.server.threads, 3);
        // …the environment-only names are not.
        let errs = load_source(
            &source,
            &vars(&[("IMGFORGE_KEY", "aa"), ("IMGPROXY_BIND", ":8080")]),
        )
        .expect_err("shortcut with a file");
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("environment variable IMGFORGE_KEY: configures imgforge only when there is no config file"), "{text:?}");
        assert!(text[1].contains("IMGPROXY_BIND"), "{text:?}");
    }

    #[test]
    fn the_source_is_chosen_from_the_command_line_then_the_default_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let default = dir.path().join("imgforge.toml");
        assert_eq!(Source::choose(None, &default), Source::Environment);
        let given = PathBuf::from("/x.toml");
        assert_eq!(
            Source::choose(Some(given.clone()), &default),
            Source::File(given)
        );
        std::fs::write(&default, "").expect("write");
        assert_eq!(
            Source::choose(None, &default),
            Source::File(default.clone())
        );
    }

    #[test]
    fn environment_errors_name_their_variable() {
        let errs = load_source(
            &Source::Environment,
            &vars(&[
                ("IMGFORGE_ALLOW_UNSIGNED", "true"),
                ("IMGPROXY_LOCAL_FILESYSTEM_ROOT", "/nonexistent/images"),
            ]),
        )
        .expect_err("no such root");
        let text = errs[0].to_string();
        assert_eq!(
            text,
            "environment variable IMGPROXY_LOCAL_FILESYSTEM_ROOT: key `site.origin.root`: /nonexistent/images is not a directory"
        );
    }

    #[test]
    fn the_environment_alone_serves_imgproxy_urls_at_the_root() {
        let loaded = load_source(
            &Source::Environment,
            &vars(&[
                ("IMGFORGE_KEY", "736563726574"),
                ("IMGFORGE_SALT", "68656c6c6f"),
                ("IMGFORGE_SERVER_THREADS", "1"),
            ]),
        )
        .expect("valid");
        let c = &loaded.config;
        assert_eq!(c.source, Source::Environment);
        assert_eq!(c.server.threads, 1);
        assert!(c.server.public_health);
        assert_eq!(c.server.listen, vec!["0.0.0.0:3000".parse().expect("addr")]);
        assert_eq!(c.sites.len(), 1);
        assert!(c.sites[0].default);
        assert!(matches!(c.sites[0].origin, crate::Origin::None));
        assert_eq!(c.sites[0].routes[0].prefix, "/");
        assert!(!c.cache.enabled());
    }
}
