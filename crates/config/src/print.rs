//! `imgforge --print-config`: the effective configuration as TOML, every default written out,
//! paths made absolute (so the output works from any directory), secrets masked unless asked.
//! Saved to a file, the unmasked output passes `--check` and starts the same gateway: how a user
//! graduates from the environment to a file.

use std::path::{Path, PathBuf};

use crate::load::Loaded;
use crate::model::Source;
use crate::schema::FileConfig;

/// What masked secrets read as.
pub const MASK: &str = "<redacted>";

impl Loaded {
    /// The configuration as TOML; `show_secrets` = false masks keys, salts and tokens (paths of
    /// `*_file` secrets are kept: they are not secret).
    pub fn to_toml(&self, show_secrets: bool) -> Result<String, String> {
        let mut file = self.schema.clone();
        let base = match &self.config.source {
            Source::File(path) => path.parent().map(Path::to_path_buf),
            Source::Environment => None,
        };
        absolute_paths(&mut file, base.as_deref());
        if !show_secrets {
            mask(&mut file);
        }
        let body =
            toml::to_string(&file).map_err(|e| format!("cannot print the configuration: {e}"))?;
        let from = match &self.config.source {
            Source::File(path) => format!("{} and the environment's overrides", path.display()),
            Source::Environment => "the environment (no config file)".to_string(),
        };
        let secrets = if show_secrets {
            "# Contains secrets: keep it private (mode 600).\n"
        } else {
            "# Secrets are masked; `--print-config --show-secrets` prints them.\n"
        };
        Ok(format!(
            "# imgforge configuration from {from}, every default written out.\n{secrets}\n{body}"
        ))
    }
}

fn absolute_paths(file: &mut FileConfig, base: Option<&Path>) {
    let abs = |p: &mut PathBuf| {
        let joined = match base {
            Some(dir) if p.is_relative() && !dir.as_os_str().is_empty() => dir.join(&*p),
            _ => p.clone(),
        };
        *p = std::path::absolute(&joined).unwrap_or(joined);
    };
    let s = &mut file.server;
    s.admin_token_file.as_mut().map(abs);
    if let Some(tls) = &mut s.tls {
        let tls = tls.get_mut();
        abs(&mut tls.cert);
        abs(&mut tls.key);
    }
    file.cache.disk_path.as_mut().map(abs);
    if let Some(c) = &mut file.cluster {
        c.password_file.as_mut().map(abs);
    }
    for site in &mut file.site {
        let site = site.get_mut();
        if let Some(root) = site.origin.as_mut().and_then(|o| o.get_mut().root.as_mut()) {
            abs(root.get_mut());
        }
        for route in &mut site.route {
            let r = route.get_mut();
            for p in [
                &mut r.key_file,
                &mut r.salt_file,
                &mut r.auth_token_file,
                &mut r.watermark,
            ] {
                p.as_mut().map(abs);
            }
        }
    }
}

fn mask(file: &mut FileConfig) {
    if let Some(t) = &mut file.server.admin_token {
        *t = MASK.to_string();
    }
    if let Some(c) = &mut file.cluster {
        if let Some(p) = &mut c.password {
            *p = MASK.to_string();
        }
        // A password inside the URL: `redis://user:secret@host` → `redis://user:<redacted>@host`.
        if let Some(url) = &mut c.redis {
            let u = url.get_ref().clone();
            if let Some((scheme, rest)) = u.split_once("://")
                && let Some((auth, host)) = rest.split_once('@')
            {
                let user = auth.split_once(':').map_or("", |(u, _)| u);
                *url.get_mut() = format!("{scheme}://{user}:{MASK}@{host}");
            }
        }
    }
    for site in &mut file.site {
        for route in &mut site.get_mut().route {
            let r = route.get_mut();
            for list in [&mut r.key, &mut r.salt, &mut r.auth_token]
                .into_iter()
                .flatten()
            {
                list.iter_mut().for_each(|v| *v = MASK.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Vars, load_source};

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_prints_as_a_file_that_loads_the_same() {
        let loaded = load_source(
            &Source::Environment,
            &vars(&[
                ("IMGPROXY_KEY", "736563726574"),
                ("IMGPROXY_SALT", "68656c6c6f"),
                ("IMGPROXY_SECRET", "0123456789abcdef0123"),
                ("IMGPROXY_PRESETS", "thumb=rs:fill:200:200"),
                (
                    "IMGFORGE_SERVER_ADMIN_TOKEN",
                    "an-admin-token-of-some-length",
                ),
            ]),
        )
        .expect("valid");
        let masked = loaded.to_toml(false).expect("toml");
        for secret in [
            "736563726574",
            "68656c6c6f",
            "0123456789abcdef0123",
            "an-admin-token",
        ] {
            assert!(!masked.contains(secret), "{secret} printed:\n{masked}");
        }
        assert!(masked.contains(MASK), "{masked}");

        let full = loaded.to_toml(true).expect("toml");
        assert!(full.contains("public_health = true"), "{full}");
        let again = crate::parse(Path::new("printed.toml"), &full, |_| None)
            .unwrap_or_else(|e| panic!("{e:?}\n{full}"));
        assert_eq!(again.server.listen, loaded.config.server.listen);
        assert_eq!(again.server.admin_token, loaded.config.server.admin_token);
        assert_eq!(
            again.sites[0].routes[0].auth_tokens,
            loaded.config.sites[0].routes[0].auth_tokens
        );
        assert!(matches!(again.sites[0].origin, crate::Origin::None));
    }

    #[test]
    fn relative_paths_are_printed_absolute() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("images")).expect("mkdir");
        std::fs::write(dir.path().join("key"), "736563726574").expect("key");
        std::fs::write(dir.path().join("salt"), "68656c6c6f").expect("salt");
        let path = dir.path().join("imgforge.toml");
        std::fs::write(
            &path,
            "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n[site.origin]\nroot = \"images\"\n\
             [[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nkey_file = \"key\"\nsalt_file = \"salt\"\n",
        )
        .expect("write");
        let loaded = load_source(&Source::File(path), &Vars::new()).expect("valid");
        let text = loaded.to_toml(false).expect("toml");
        let root = dir.path().join("images").display().to_string();
        assert!(text.contains(&format!("root = {root:?}")), "{text}");
        assert!(
            text.contains(&format!(
                "key_file = {:?}",
                dir.path().join("key").display().to_string()
            )),
            "{text}"
        );
        // Key files stay files: nothing secret is printed, and the output loads from anywhere.
        assert!(!text.contains("736563726574"), "{text}");
        crate::parse(Path::new("/elsewhere/x.toml"), &text, |_| None)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    }
}
