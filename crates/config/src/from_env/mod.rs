//! Starting from the environment alone: a one-site configuration built from the variables the
//! imgforge deployment guide names (`IMGFORGE_KEY`, `IMGFORGE_SALT`, …) and imgproxy's own
//! (`IMGPROXY_KEY`, `IMGPROXY_BIND`, …), so that `docker run -e IMGFORGE_KEY=… -e IMGFORGE_SALT=…`
//! or an imgproxy container's environment is enough to serve imgproxy URLs at `/`.
//!
//! Pure: [`config_from_env`] takes the variables as a map and returns the schema (what a file
//! would have said) or errors naming the variable; the caller validates it like a file. Every
//! setting has an `IMGFORGE_` name and, where imgproxy has the setting, its `IMGPROXY_` name;
//! both spellings of one setting, or a setting and the `IMGFORGE_<SECTION>_<KEY>` override of the
//! same key, may be given together only with the same value. Variables of neither list are
//! reported: unknown `IMGPROXY_*` names that look like a credential, a limit or an allow-list
//! are errors (ignoring them could weaken security), others warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::error::{ConfigError, Origin};
use crate::schema::{
    FileConfig, OriginSection, RateLimitSection, RouteKindName, RouteSection, SiteSection,
};
use crate::units::{ByteSize, HumanDuration};

mod settings;
#[cfg(test)]
mod tests;
mod values;

pub use settings::{DECODED_TYPES, SETTINGS, Setting};
use settings::{IGNORED, Id, MAX_REDIRECTS, OTHER_KNOWN, SECURITY_WORDS};
use values::{base_url, bind, boolean, hex_list, list, megapixels, number, positive, quality};

/// Environment variables by name (only the `IMGFORGE_*` and `IMGPROXY_*` ones matter).
pub type Vars = BTreeMap<String, String>;

/// The default listener of the environment mode: the imgforge guide's port, or imgproxy's when
/// the environment speaks only imgproxy's dialect.
pub const DEFAULT_PORT: u16 = 3000;
/// imgproxy's default port (`IMGPROXY_BIND=:8080`).
pub const IMGPROXY_DEFAULT_PORT: u16 = 8080;
/// Name of the one site.
pub const SITE_NAME: &str = "default";

/// What the environment describes.
#[derive(Debug, Clone)]
pub struct FromEnv {
    /// The configuration, as if read from a file (validate it with the rest of the loader).
    pub file: FileConfig,
    /// Variables ignored, and why: print them at start.
    pub warnings: Vec<String>,
    /// Which variable set each config key: a validation error at that key names it.
    pub keys: BTreeMap<&'static str, String>,
}

/// The variables set that only the environment mode reads (with a config file they would be
/// ignored, which is an error): every [`SETTINGS`] name and every `IMGPROXY_*` variable.
pub fn shortcuts_set(vars: &Vars) -> Vec<String> {
    vars.keys()
        .filter(|k| {
            k.starts_with("IMGPROXY_") || SETTINGS.iter().any(|s| s.names.contains(&k.as_str()))
        })
        .cloned()
        .collect()
}

/// Builds the one-site configuration the variables describe.
pub fn config_from_env(vars: &Vars) -> Result<FromEnv, Vec<ConfigError>> {
    let mut b = Builder::new(vars);
    b.report_unknown();
    for setting in SETTINGS {
        let Some((name, value)) = b.value_of(setting) else {
            continue;
        };
        if let Err(message) = b.apply(setting.id, &name, value.trim()) {
            b.errs.push(env_error(&name, message));
        }
    }
    b.finish()
}

fn env_error(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: Origin::Env(var.to_string()),
        key: String::new(),
        message: message.into(),
    }
}

struct Builder<'a> {
    vars: &'a Vars,
    file: FileConfig,
    route: RouteSection,
    origin: Option<OriginSection>,
    /// What IMGFORGE_CACHE_TYPE asked for.
    cache_type: Option<CacheType>,
    keys: BTreeMap<&'static str, String>,
    warnings: Vec<String>,
    errs: Vec<ConfigError>,
}

impl<'a> Builder<'a> {
    fn new(vars: &'a Vars) -> Self {
        let imgproxy_only = vars.keys().any(|k| k.starts_with("IMGPROXY_"))
            && !vars.keys().any(|k| {
                k.starts_with("IMGFORGE_") && SETTINGS.iter().any(|s| s.names.contains(&k.as_str()))
            });
        let port = if imgproxy_only {
            IMGPROXY_DEFAULT_PORT
        } else {
            DEFAULT_PORT
        };
        let mut file = FileConfig::default();
        file.server.listen = vec![Spanned::new(0..0, format!("0.0.0.0:{port}"))];
        // Where load balancers look (imgsrv's contract): on the public listener.
        file.server.public_health = true;
        // No cache unless IMGFORGE_CACHE_TYPE asks for one, as in the imgforge guide.
        file.cache.memory_size = ByteSize(0);
        Builder {
            vars,
            file,
            route: RouteSection::new("/", RouteKindName::Imgproxy),
            origin: None,
            cache_type: None,
            keys: BTreeMap::new(),
            warnings: Vec::new(),
            errs: Vec::new(),
        }
    }

    /// The one value given for `setting` (its names and its override must agree).
    fn value_of(&mut self, setting: &Setting) -> Option<(String, &'a str)> {
        let given: Vec<(&str, &'a str)> = setting
            .names
            .iter()
            .chain(setting.override_name.iter())
            .filter_map(|n| self.vars.get(*n).map(|v| (*n, v.as_str())))
            .collect();
        let (first, value) = *given.first()?;
        if let Some((other, _)) = given.iter().find(|(_, v)| v.trim() != value.trim()) {
            self.errs.push(env_error(
                other,
                format!("{first} sets the same thing to another value: give one of them"),
            ));
            return None;
        }
        // The override applies itself later (to a file's keys too): nothing more to do here.
        if given.iter().all(|(n, _)| Some(*n) == setting.override_name) {
            return None;
        }
        self.keys.insert(setting.key, first.to_string());
        Some((first.to_string(), value))
    }

    fn report_unknown(&mut self) {
        for name in self.vars.keys() {
            let (prefix, rest) = match name.split_once('_') {
                Some((p @ ("IMGPROXY" | "IMGFORGE"), rest)) => (p, rest),
                _ => continue,
            };
            let known = SETTINGS
                .iter()
                .any(|s| s.names.contains(&name.as_str()) || s.override_name == Some(name))
                || crate::env::VARIABLES.contains(&name.as_str())
                || OTHER_KNOWN.contains(&name.as_str());
            if known {
                continue;
            }
            if let Some((_, why)) = IGNORED.iter().find(|(n, _)| n == name) {
                self.warnings.push(format!("{name} is ignored: {why}"));
            } else if prefix == "IMGPROXY" && SECURITY_WORDS.iter().any(|w| rest.contains(w)) {
                self.errs.push(env_error(
                    name,
                    "imgforge does not support this imgproxy setting, and ignoring it could \
                     weaken security (it looks like a credential, a limit or an allow-list): \
                     remove it, or see docs/configuration.md for the settings imgforge reads",
                ));
            } else {
                self.warnings.push(format!(
                    "{name} is not a setting imgforge reads: ignored (docs/configuration.md lists them)"
                ));
            }
        }
    }

    fn apply(&mut self, id: Id, name: &str, v: &str) -> Result<(), String> {
        let r = &mut self.route;
        let t = &mut self.file.transform;
        match id {
            Id::Bind => self.file.server.listen = vec![Spanned::new(0..0, bind(v)?)],
            Id::PrometheusBind => self.file.server.admin_listen = Spanned::new(0..0, bind(v)?),
            Id::Key | Id::Salt => {
                let list = hex_list(v)?;
                if id == Id::Key {
                    r.key = Some(list);
                } else {
                    r.salt = Some(list);
                }
            }
            Id::SignatureSize => {
                let n: usize = number(v)?;
                if !(1..=32).contains(&n) {
                    return Err(format!("{n} is out of range: expected 1 to 32 bytes"));
                }
                r.signature_size = Some(n);
            }
            Id::TrustedSignatures => r.trusted_signatures = Some(list(v)),
            Id::AllowUnsigned => r.allow_unsigned = Some(boolean(v)?),
            Id::Secret => {
                if v.len() < 16 || !v.is_ascii() {
                    return Err(
                        "must be at least 16 ASCII characters (the bearer token every \
                                image request must present; a short one is guessable)"
                            .into(),
                    );
                }
                r.auth_token = Some(vec![v.to_string()]);
            }
            Id::AllowedSources => {
                let list = list(v);
                for src in &list {
                    if let Err(e) = imgforge_imgproxy::SourcePattern::new(src) {
                        return Err(if src.ends_with('/') {
                            format!("{src:?}: {e}")
                        } else {
                            format!(
                                "{src:?} must end with '/' (otherwise \"{src}@evil.example\" would match)"
                            )
                        });
                    }
                }
                r.allowed_sources = Some(list);
            }
            Id::LocalRoot => {
                if v.is_empty() {
                    return Err("expected a directory".into());
                }
                self.set_origin(name, |o| {
                    o.root = Some(Spanned::new(0..0, PathBuf::from(v)))
                })?;
            }
            Id::BaseUrl => {
                let (server, tls, host) = base_url(v)?;
                self.set_origin(name, |o| {
                    o.servers = vec![Spanned::new(0..0, server)];
                    o.tls = tls;
                    o.host_header = Some(host);
                })?;
            }
            Id::PathPrefix => {
                let p = v.trim_end_matches('/');
                if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
                    return Err(format!("{v:?}: expected a path such as \"/img\""));
                }
                r.prefix = Spanned::new(0..0, p.to_string());
            }
            Id::MaxSrcResolution => t.max_src_resolution = megapixels(v)?,
            Id::MaxAnimationFrameResolution => t.max_animation_frame_resolution = megapixels(v)?,
            Id::MaxSrcFileSize => {
                let size = ByteSize::parse(v)?;
                if size.0 == 0 {
                    return Err(
                        "0 would refuse every source (imgproxy's 0 = no limit is not \
                                supported): give a size, e.g. 33554432 or \"32MiB\""
                            .into(),
                    );
                }
                t.max_src_file_size = size;
            }
            Id::MaxAnimationFrames => t.max_animation_frames = positive(v)?,
            Id::MaxResultDimension => t.max_result_dimension = number(v)?,
            Id::AllowedMimeTypes => self.mime_types(name, v)?,
            Id::Workers => {
                // 0: the default (one per core), as imgproxy and the imgforge guide read it.
                let n: usize = number(v)?;
                if n > 0 {
                    t.workers = n;
                }
            }
            Id::Timeout => {
                let d = HumanDuration::parse(v)?;
                if d.0.is_zero() {
                    return Err("must be greater than zero".into());
                }
                t.timeout = d;
            }
            Id::Ttl => {
                let d = HumanDuration::parse(v)?;
                r.cache_ttl = Some(d);
                r.cache_max_ttl = Some(d);
                if d.0 != Duration::from_secs(31_536_000) {
                    self.warnings.push(format!(
                        "{name}={v}: imgforge's cache keeps a result at most this long, but \
                         responses still carry Cache-Control: max-age=31536000 (a URL's exp \
                         option shortens it)"
                    ));
                }
            }
            Id::Quality => r.quality = Some(quality(v)?),
            Id::FormatQuality => {
                let mut map = BTreeMap::new();
                for item in list(v) {
                    let (format, q) = item.split_once('=').ok_or_else(|| {
                        format!("{item:?}: expected FORMAT=QUALITY, e.g. webp=75")
                    })?;
                    let format = format.trim().to_ascii_lowercase();
                    if imgforge_imgproxy::Format::from_name(&format).is_none() {
                        return Err(format!("unknown format {format:?}"));
                    }
                    map.insert(format, quality(q)?);
                }
                r.format_quality = Some(map);
            }
            Id::WebpDetection => r.auto_webp = Some(boolean(v)?),
            Id::AvifDetection => r.auto_avif = Some(boolean(v)?),
            Id::EnforceWebp => r.enforce_webp = Some(boolean(v)?),
            Id::EnforceAvif => r.enforce_avif = Some(boolean(v)?),
            Id::ClientHints => r.client_hints = Some(boolean(v)?),
            Id::Presets => {
                let mut map = BTreeMap::new();
                for item in list(v) {
                    let (preset, options) = item
                        .split_once('=')
                        .filter(|(n, o)| !n.trim().is_empty() && !o.trim().is_empty())
                        .ok_or_else(|| {
                            format!(
                                "{item:?}: expected NAME=OPTIONS, e.g. thumb=rs:fill:200:200/q:75"
                            )
                        })?;
                    map.insert(preset.trim().to_string(), options.trim().to_string());
                }
                if let Err(e) = imgforge_imgproxy::Presets::parse(&map) {
                    return Err(e.to_string());
                }
                r.presets = Some(map);
            }
            Id::OnlyPresets => r.only_presets = Some(boolean(v)?),
            Id::AllowSecurityOptions => r.allow_security_options = Some(boolean(v)?),
            Id::AllowLoopback => r.allow_loopback_sources = Some(boolean(v)?),
            Id::AllowPrivate => r.allow_private_sources = Some(boolean(v)?),
            Id::AllowLinkLocal => r.allow_link_local_sources = Some(boolean(v)?),
            Id::PrometheusNamespace => {
                crate::metrics::check_namespace(v)?;
                self.file.metrics.namespace = v.to_string();
            }
            Id::UseEtag => {
                if !boolean(v)? {
                    self.warnings.push(format!(
                        "{name}=false: imgforge always sends an ETag and answers If-None-Match with 304"
                    ));
                }
            }
            Id::CacheType => {
                self.cache_type = match v.to_ascii_lowercase().as_str() {
                    "memory" => Some(CacheType::Memory),
                    "disk" => Some(CacheType::Disk),
                    "hybrid" => Some(CacheType::Hybrid),
                    "" | "none" => None,
                    _ => return Err(format!("{v:?}: expected memory, disk or hybrid")),
                }
            }
            Id::RateLimitPerMinute => {
                let n: u64 = number(v)?;
                self.file.server.global_rate_limit = (n > 0).then(|| RateLimitSection {
                    rate: format!("{n}/m"),
                    burst: None,
                });
            }
            Id::MaxClients => self.file.server.max_connections = number(v)?,
            Id::MaxRedirects => {
                let n: u64 = number(v)?;
                if n < MAX_REDIRECTS {
                    return Err(format!(
                        "imgforge follows up to {MAX_REDIRECTS} redirects and cannot lower it to {n}: \
                         unset it to accept {MAX_REDIRECTS}"
                    ));
                }
            }
            Id::LogLevel => self.file.log.level = v.to_ascii_lowercase(),
        }
        Ok(())
    }

    fn set_origin(
        &mut self,
        name: &str,
        set: impl FnOnce(&mut OriginSection),
    ) -> Result<(), String> {
        if self.origin.is_some() {
            return Err(
                "a local root and a base URL were both given: relative sources come from one of them"
                    .into(),
            );
        }
        let mut o = OriginSection::default();
        set(&mut o);
        self.origin = Some(o);
        self.keys.insert("site.origin", name.to_string());
        Ok(())
    }

    fn mime_types(&mut self, name: &str, v: &str) -> Result<(), String> {
        let given = list(v);
        if given.is_empty() {
            return Err("empty: no source could be transformed".into());
        }
        for g in &given {
            let known = crate::model::mime_format(g).is_some();
            if !known {
                return Err(format!("{g:?} is not an image type (e.g. image/jpeg)"));
            }
            if !DECODED_TYPES.contains(&g.to_ascii_lowercase().as_str())
                && !matches!(
                    g.to_ascii_lowercase().as_str(),
                    "image/jpg" | "image/pjpeg" | "image/heif"
                )
            {
                self.warnings.push(format!(
                    "{name}: imgforge never decodes {g}; sources of that type are refused anyway"
                ));
            }
        }
        self.route.allowed_mime_types = Some(given);
        self.keys
            .insert("site.route.allowed_mime_types", name.to_string());
        Ok(())
    }

    fn finish(mut self) -> Result<FromEnv, Vec<ConfigError>> {
        let r = &self.route;
        let has_keys = r.key.as_ref().is_some_and(|k| !k.is_empty());
        let key_var = || self.keys.get("site.route.key").cloned();
        let salt_var = || self.keys.get("site.route.salt").cloned();
        match (r.key.as_ref().map(Vec::len), r.salt.as_ref().map(Vec::len)) {
            (Some(k), Some(s)) if k != s => self.errs.push(env_error(
                &key_var().unwrap_or_default(),
                format!(
                    "{k} key(s) but {s} salt(s) in {}: give one salt per key",
                    salt_var().unwrap_or_default()
                ),
            )),
            (Some(_), None) => self.errs.push(env_error(
                &key_var().unwrap_or_default(),
                "a key needs its salt: set IMGFORGE_SALT (or IMGPROXY_SALT), hex",
            )),
            (None, Some(_)) => self.errs.push(env_error(
                &salt_var().unwrap_or_default(),
                "a salt needs its key: set IMGFORGE_KEY (or IMGPROXY_KEY), hex",
            )),
            _ => {}
        }
        if !has_keys && r.allow_unsigned != Some(true) {
            self.errs.push(env_error(
                "IMGFORGE_KEY",
                "not set: give the signing key and salt (IMGFORGE_KEY and IMGFORGE_SALT, or \
                 IMGPROXY_KEY and IMGPROXY_SALT, hex), or IMGFORGE_ALLOW_UNSIGNED=true to serve \
                 unsigned URLs (development only)",
            ));
        }
        self.cache();
        if !self.errs.is_empty() {
            return Err(self.errs);
        }
        let route = self.route;
        // Without a local root or a base URL the site has no origin: it fetches absolute URLs
        // only (imgproxy's behaviour without IMGPROXY_BASE_URL).
        self.file.site = vec![Spanned::new(
            0..0,
            SiteSection {
                name: Spanned::new(0..0, SITE_NAME.to_string()),
                hosts: Vec::new(),
                default: true,
                origin: self.origin.map(|o| Spanned::new(0..0, o)),
                route: vec![Spanned::new(0..0, route)],
            },
        )];
        Ok(FromEnv {
            file: self.file,
            warnings: self.warnings,
            keys: self.keys,
        })
    }

    /// `IMGFORGE_CACHE_TYPE` with `IMGFORGE_CACHE_DISK_PATH` (a `[cache]` override, read here
    /// to check the two agree).
    fn cache(&mut self) {
        let path = self
            .vars
            .get("IMGFORGE_CACHE_DISK_PATH")
            .map(|p| p.trim())
            .filter(|p| !p.is_empty());
        let memory = crate::schema::CacheSection::default().memory_size;
        let c = &mut self.file.cache;
        match (self.cache_type, path) {
            (Some(CacheType::Memory), None) | (Some(CacheType::Hybrid), Some(_)) => {
                c.memory_size = memory
            }
            (Some(CacheType::Disk), Some(_)) | (None, None) => {}
            (Some(kind @ (CacheType::Disk | CacheType::Hybrid)), None) => {
                self.errs.push(env_error(
                    "IMGFORGE_CACHE_TYPE",
                    format!(
                        "{} needs IMGFORGE_CACHE_DISK_PATH (a writable directory)",
                        kind.name()
                    ),
                ))
            }
            (Some(CacheType::Memory), Some(_)) => self.errs.push(env_error(
                "IMGFORGE_CACHE_DISK_PATH",
                "set, but IMGFORGE_CACHE_TYPE=memory keeps nothing on disk: use hybrid or disk, or unset the path",
            )),
            (None, Some(_)) => self.errs.push(env_error(
                "IMGFORGE_CACHE_DISK_PATH",
                "set without IMGFORGE_CACHE_TYPE: set it to disk or hybrid",
            )),
        }
        if self.cache_type.is_some() {
            self.keys
                .insert("cache.memory_size", "IMGFORGE_CACHE_TYPE".to_string());
        }
    }
}

/// `IMGFORGE_CACHE_TYPE`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheType {
    Memory,
    Disk,
    Hybrid,
}

impl CacheType {
    fn name(self) -> &'static str {
        match self {
            CacheType::Memory => "memory",
            CacheType::Disk => "disk",
            CacheType::Hybrid => "hybrid",
        }
    }
}
