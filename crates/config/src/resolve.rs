//! The I/O of loading a configuration, kept out of validation.
//!
//! Before validation, `*_file` secrets are read into their keys ([`secret_files`]): their content
//! is then validated exactly like an inline value. After it, [`check`] looks up origin servers
//! given by name, checks the files the config names (a root directory, TLS certificate and key)
//! and reads watermark images; [`Resolved::apply`] fills what it found into the validated model.
//! Errors carry the same file:line:key as validation's, so a user cannot tell the two steps apart.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{ConfigError, Locator};
use crate::model::{Config, Origin, RouteKind, parse_server};
use crate::schema::{self, FileConfig, RouteKindName};

/// What [`check`] may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Look origin server names up (false: nothing is sent on the network, and names keep the
    /// unspecified address, for checking only).
    pub lookup_names: bool,
}

/// Resolves every `<key>_file = PATH` into its key; giving both is an error.
pub(crate) fn secret_files(
    file: &mut FileConfig,
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
    if let Some(c) = &mut file.cluster
        && let Some(p) = c.password_file.take()
    {
        if c.password.is_some() {
            errs.push(loc.whole(
                "cluster.password_file",
                "give password or password_file, not both",
            ));
        }
        c.password = read(&loc.resolve(&p), "cluster.password_file", &mut errs)
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

/// What [`check`] found: addresses of origin servers given by name, watermark images.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    servers: HashMap<String, SocketAddr>,
    watermarks: HashMap<PathBuf, Arc<Bytes>>,
}

/// Looks names up and checks files, pushing each problem to `errs`. Values that validation
/// refuses (a malformed server) are skipped here: validation reports them.
pub(crate) fn check(
    file: &FileConfig,
    loc: &Locator<'_>,
    opts: Options,
    errs: &mut Vec<ConfigError>,
) -> Resolved {
    let mut found = Resolved::default();
    if let Some(t) = &file.server.tls {
        let span = t.span();
        let t = t.get_ref();
        for (key, path) in [
            ("server.tls.cert", loc.resolve(&t.cert)),
            ("server.tls.key", loc.resolve(&t.key)),
        ] {
            if !path.is_file() {
                errs.push(loc.at(
                    span.clone(),
                    key,
                    format!("file {} does not exist or is not readable", path.display()),
                ));
            }
        }
    }
    for site in &file.site {
        let site = site.get_ref();
        if let Some(origin) = &site.origin {
            found.origin(origin.get_ref(), loc, opts, errs);
        }
        for route in &site.route {
            let span = route.span();
            let route = route.get_ref();
            if route.kind == RouteKindName::Imgproxy
                && let Some(p) = &route.watermark
            {
                found.watermark(&loc.resolve(p), span, loc, errs);
            }
        }
    }
    found
}

impl Resolved {
    fn origin(
        &mut self,
        o: &schema::OriginSection,
        loc: &Locator<'_>,
        opts: Options,
        errs: &mut Vec<ConfigError>,
    ) {
        if let (Some(root), true) = (&o.root, o.servers.is_empty()) {
            let dir = loc.resolve(root.get_ref());
            if !dir.is_dir() {
                errs.push(loc.at(
                    root.span(),
                    "site.origin.root",
                    format!("{} is not a directory", dir.display()),
                ));
            }
        }
        if !opts.lookup_names {
            return;
        }
        for s in &o.servers {
            let text = s.get_ref();
            let is_name = text.parse::<SocketAddr>().is_err();
            if !is_name || parse_server(text).is_err() || self.servers.contains_key(text) {
                continue;
            }
            match lookup(text) {
                Ok(addr) => {
                    self.servers.insert(text.clone(), addr);
                }
                Err(m) => errs.push(loc.at(s.span(), "site.origin.servers", m)),
            }
        }
    }

    fn watermark(
        &mut self,
        path: &Path,
        span: std::ops::Range<usize>,
        loc: &Locator<'_>,
        errs: &mut Vec<ConfigError>,
    ) {
        if self.watermarks.contains_key(path) {
            return;
        }
        let message = match std::fs::read(path) {
            Ok(b) if !b.is_empty() => {
                self.watermarks
                    .insert(path.to_path_buf(), Arc::new(Bytes::from(b)));
                return;
            }
            Ok(_) => format!("{} is empty", path.display()),
            Err(e) => format!("cannot read {}: {e}", path.display()),
        };
        errs.push(loc.at(span, "site.route.watermark", message));
    }

    /// Fills the addresses and images found into a model validated from the same schema.
    pub(crate) fn apply(&self, config: &mut Config) {
        for site in &mut config.sites {
            if let Origin::Servers(up) = &mut site.origin {
                for s in &mut up.servers {
                    if let Some(addr) = self.servers.get(&s.written) {
                        s.addr = *addr;
                    }
                }
            }
            for route in &mut site.routes {
                if let RouteKind::Imgproxy(image) = &mut route.kind
                    && let Some(p) = &image.watermark_file
                {
                    image.watermark = self.watermarks.get(p).cloned();
                }
            }
        }
    }
}

/// `HOST:PORT` → the first address the system resolver gives.
fn lookup(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("cannot resolve server {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("server {text:?} resolved to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `localhost` comes from the hosts file: no query leaves the machine.
    #[test]
    fn names_are_looked_up() {
        let addr = lookup("localhost:80").expect("localhost");
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 80);
    }
}
