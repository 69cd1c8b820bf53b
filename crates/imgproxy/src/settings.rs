//! Route settings: the runtime model of one `kind = "imgproxy"` route.
//!
//! Config glue turns the TOML strings into these types once (hex keys,
//! source patterns, presets), so that request handling never parses config.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::apply::{Applier, OPTION_NAMES, PresetDefs, is_security_option};
use super::options::{Format, ProcessingOptions};

/// A configuration mistake, reported once at load time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `key` and `salt` lists differ in length.
    #[error("{keys} key(s) but {salts} salt(s): key and salt lists must have the same length")]
    KeySaltCount {
        /// Number of keys.
        keys: usize,
        /// Number of salts.
        salts: usize,
    },
    /// A key or salt is not hex.
    #[error("{what} #{index} is not a hex string")]
    NotHex {
        /// `"key"` or `"salt"`.
        what: &'static str,
        /// Zero-based position in the list.
        index: usize,
    },
    /// A key decodes to zero bytes.
    #[error("key #{index} is empty")]
    EmptyKey {
        /// Zero-based position in the list.
        index: usize,
    },
    /// `signature_size` outside 1..=32.
    #[error("signature_size must be within 1..=32, got {0}")]
    SignatureSize(usize),
    /// No key pair and unsigned URLs are not allowed: every request would fail.
    #[error("no key/salt pair configured and allow_unsigned = false")]
    NoKeys,
    /// A quality outside 1..=100.
    #[error("quality for {what} must be within 1..=100, got {value}")]
    Quality {
        /// `"default"` or a format name.
        what: String,
        /// The value given.
        value: u8,
    },
    /// A bad preset definition.
    #[error("preset `{name}`: {reason}")]
    Preset {
        /// Preset name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad `allowed_sources` entry.
    #[error("allowed source `{pattern}`: {reason}")]
    SourcePattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An unknown name in `allowed_options`.
    #[error("allowed_options: unknown option `{0}`")]
    AllowedOption(String),
}

/// One key/salt pair with its HMAC state precomputed (key schedule and salt
/// absorbed), so that each verification only hashes the path.
#[derive(Clone)]
pub struct KeyPair {
    mac: Hmac<Sha256>,
}

impl KeyPair {
    /// From raw (already hex-decoded) bytes. The key must not be empty; the
    /// salt may be.
    pub fn new(key: &[u8], salt: &[u8]) -> Result<KeyPair, SettingsError> {
        if key.is_empty() {
            return Err(SettingsError::EmptyKey { index: 0 });
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| SettingsError::EmptyKey { index: 0 })?;
        mac.update(salt);
        Ok(KeyPair { mac })
    }

    /// The HMAC state after `key` and `salt`; clone it and feed the path.
    pub(crate) fn prepared(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str("KeyPair(..)")
    }
}

/// Decodes the TOML `key`/`salt` hex lists into key pairs.
///
/// Counts must match; errors name the first bad index. Surrounding
/// whitespace is ignored.
pub fn hex_key_pairs(keys: &[String], salts: &[String]) -> Result<Vec<KeyPair>, SettingsError> {
    if keys.len() != salts.len() {
        return Err(SettingsError::KeySaltCount {
            keys: keys.len(),
            salts: salts.len(),
        });
    }
    keys.iter()
        .zip(salts)
        .enumerate()
        .map(|(index, (k, s))| {
            let key =
                hex::decode(k.trim()).map_err(|_| SettingsError::NotHex { what: "key", index })?;
            let salt = hex::decode(s.trim()).map_err(|_| SettingsError::NotHex {
                what: "salt",
                index,
            })?;
            KeyPair::new(&key, &salt).map_err(|_| SettingsError::EmptyKey { index })
        })
        .collect()
}

/// An `allowed_sources` prefix; `*` matches any run of characters except `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePattern {
    pattern: String,
    /// Literal pieces between the `*`s, split once at load.
    pieces: Vec<String>,
}

impl SourcePattern {
    /// Validates a pattern. It must end with `/`: without it
    /// `http://example.com` would also allow `http://example.com@evil.net`.
    pub fn new(pattern: &str) -> Result<SourcePattern, SettingsError> {
        let pattern = pattern.trim();
        let err = |reason| SettingsError::SourcePattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if !pattern.contains(":/") {
            return Err(err(
                "must be an absolute URL prefix such as https://cdn.example.com/",
            ));
        }
        if !pattern.ends_with('/') {
            return Err(err("must end with `/`"));
        }
        Ok(SourcePattern {
            pattern: pattern.to_owned(),
            pieces: pattern.split('*').map(str::to_owned).collect(),
        })
    }

    /// The pattern as configured.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Prefix match with `*` wildcards (imgproxy's `^lit([^/]*)lit…`).
    pub fn matches(&self, url: &str) -> bool {
        match_parts(&self.pieces, url.as_bytes())
    }
}

fn match_parts(parts: &[String], s: &[u8]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return true;
    };
    let Some(after) = s.strip_prefix(first.as_bytes()) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    // The wildcard takes 0..=n non-'/' bytes; try each split (patterns are short).
    let run = after.iter().position(|b| *b == b'/').unwrap_or(after.len());
    (0..=run).any(|k| match_parts(rest, &after[k..]))
}

/// Parses the TOML `allowed_sources` list.
pub fn parse_allowed_sources(patterns: &[String]) -> Result<Vec<SourcePattern>, SettingsError> {
    patterns.iter().map(|p| SourcePattern::new(p)).collect()
}

/// Named presets, parsed and validated once.
#[derive(Debug, Clone, Default)]
pub struct Presets {
    defs: PresetDefs,
    baseline: ProcessingOptions,
    uses_security: Vec<String>,
}

impl Presets {
    /// Parses `name → "opt:args/opt:args"` definitions (the TOML `presets`
    /// table). Every preset is applied once to check names, arguments and
    /// references to other presets; the error names the bad preset.
    pub fn parse(defs: &BTreeMap<String, String>) -> Result<Presets, SettingsError> {
        let mut parsed = BTreeMap::new();
        for (name, value) in defs {
            let name = name.trim();
            let err = |reason: String| SettingsError::Preset {
                name: name.to_owned(),
                reason,
            };
            if name.is_empty() || name.contains([':', '/']) {
                return Err(err(
                    "preset names must be non-empty and contain no `:` or `/`".into(),
                ));
            }
            let value = value.trim();
            if value.is_empty() {
                return Err(err("empty preset value".into()));
            }
            let mut segments = Vec::new();
            for seg in value.split('/') {
                if !seg.contains(':') {
                    return Err(err(format!(
                        "`{seg}` is not an option (expected name:args)"
                    )));
                }
                segments.push(seg.to_owned());
            }
            parsed.insert(name.to_owned(), segments);
        }
        let mut presets = Presets {
            defs: parsed,
            baseline: ProcessingOptions::default(),
            uses_security: Vec::new(),
        };
        for name in presets.defs.keys() {
            let mut o = ProcessingOptions::default();
            // now = 0: `exp` inside a preset is checked per request, not at load.
            let mut applier = Applier::new(&presets.defs, true, 0);
            applier
                .apply_presets(&mut o, [name.as_str()])
                .map_err(|e| SettingsError::Preset {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
        }
        presets.uses_security = presets
            .defs
            .iter()
            .filter(|(_, segs)| {
                segs.iter()
                    .any(|s| is_security_option(s.split(':').next().unwrap_or("")))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if presets.defs.contains_key("default") {
            let mut o = ProcessingOptions::default();
            let mut applier = Applier::new(&presets.defs, true, 0);
            if applier.apply_presets(&mut o, ["default"]).is_ok() {
                o.finalize();
                presets.baseline = o;
            }
        }
        Ok(presets)
    }

    /// The definitions, for applying presets to a request.
    pub(crate) fn defs(&self) -> &PresetDefs {
        &self.defs
    }

    /// Whether a preset with this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Preset names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    /// Whether no preset is defined.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Options after the `default` preset alone (imgproxy defaults if none):
    /// the reference the canonical form is written against.
    pub fn baseline(&self) -> &ProcessingOptions {
        &self.baseline
    }
}

/// Settings of one imgproxy route (TOML `[[site.route]]` with `kind = "imgproxy"`).
///
/// Build with struct-update syntax over `Default`, then call
/// [`RouteSettings::validate`] once at config load.
#[derive(Debug, Clone)]
pub struct RouteSettings {
    /// Key/salt pairs; every pair is tried (rotation). Use [`hex_key_pairs`].
    pub key_pairs: Vec<KeyPair>,
    /// Signature length in bytes before Base64, 1..=32 (default 32).
    pub signature_size: usize,
    /// Signatures accepted literally, without HMAC.
    pub trusted_signatures: Vec<String>,
    /// Accept URLs whose signature segment is anything (`unsafe`, `_`, …).
    pub allow_unsigned: bool,
    /// Named presets (`default` applies to every request).
    pub presets: Presets,
    /// The first path part is a `:`-list of presets instead of options.
    pub only_presets: bool,
    /// Option names (full and short listed separately) allowed in URLs;
    /// `None` = all. Options inside presets are not checked.
    pub allowed_options: Option<Vec<String>>,
    /// Allow `msr`, `msfs`, `maf`, `mafr`, `mrd` in URLs and presets.
    pub allow_security_options: bool,
    /// Prefixes absolute sources must match; empty = any.
    pub allowed_sources: Vec<SourcePattern>,
    /// Accept `local:///…` sources (the route has a local root).
    pub allow_local_sources: bool,
    /// Serve WebP when the URL has no format and `Accept` has `image/webp`.
    pub auto_webp: bool,
    /// Serve AVIF when the URL has no format and `Accept` has `image/avif`.
    pub auto_avif: bool,
    /// Serve WebP to clients that accept it even when the URL names a format.
    pub enforce_webp: bool,
    /// Serve AVIF to clients that accept it even when the URL names a format.
    pub enforce_avif: bool,
    /// Read `DPR`/`Width` client hints (and list them in `Vary`).
    pub enable_client_hints: bool,
    /// Default quality (80).
    pub quality: u8,
    /// Per-format default quality (webp 79, avif 63).
    pub format_quality: BTreeMap<Format, u8>,
    /// Base64 sources end with an SEO filename segment that is ignored.
    pub base64_url_includes_filename: bool,
}

impl Default for RouteSettings {
    fn default() -> Self {
        RouteSettings {
            key_pairs: Vec::new(),
            signature_size: 32,
            trusted_signatures: Vec::new(),
            allow_unsigned: false,
            presets: Presets::default(),
            only_presets: false,
            allowed_options: None,
            allow_security_options: false,
            allowed_sources: Vec::new(),
            allow_local_sources: false,
            auto_webp: false,
            auto_avif: false,
            enforce_webp: false,
            enforce_avif: false,
            enable_client_hints: false,
            quality: 80,
            format_quality: BTreeMap::from([(Format::Webp, 79), (Format::Avif, 63)]),
            base64_url_includes_filename: false,
        }
    }
}

impl RouteSettings {
    /// Checks the settings as a whole; call once after building them.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(1..=32).contains(&self.signature_size) {
            return Err(SettingsError::SignatureSize(self.signature_size));
        }
        if self.key_pairs.is_empty() && !self.allow_unsigned {
            return Err(SettingsError::NoKeys);
        }
        if !(1..=100).contains(&self.quality) {
            return Err(SettingsError::Quality {
                what: "default".into(),
                value: self.quality,
            });
        }
        for (f, q) in &self.format_quality {
            if !(1..=100).contains(q) {
                return Err(SettingsError::Quality {
                    what: f.name().into(),
                    value: *q,
                });
            }
        }
        if !self.allow_security_options
            && let Some(name) = self.presets.uses_security.first()
        {
            return Err(SettingsError::Preset {
                name: name.clone(),
                reason: "uses a security option but allow_security_options = false".into(),
            });
        }
        if let Some(allowed) = &self.allowed_options
            && let Some(bad) = allowed.iter().find(|a| !OPTION_NAMES.contains(&a.as_str()))
        {
            return Err(SettingsError::AllowedOption(bad.clone()));
        }
        Ok(())
    }

    /// Quality to encode `format` with for these options.
    pub fn quality_for(&self, options: &ProcessingOptions, format: Format) -> u8 {
        options.quality_for(format, &self.format_quality, self.quality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_pairs() {
        let ok = hex_key_pairs(&["736563726574".into()], &["68656C6C6F".into()]);
        assert_eq!(ok.map(|v| v.len()), Ok(1));
        assert_eq!(
            hex_key_pairs(&["aa".into(), "zz".into()], &["bb".into(), "cc".into()])
                .map(|v| v.len()),
            Err(SettingsError::NotHex {
                what: "key",
                index: 1
            })
        );
        assert_eq!(
            hex_key_pairs(&["aa".into()], &["b".into()]).map(|v| v.len()),
            Err(SettingsError::NotHex {
                what: "salt",
                index: 0
            })
        );
        assert_eq!(
            hex_key_pairs(&["aa".into()], &[]).map(|v| v.len()),
            Err(SettingsError::KeySaltCount { keys: 1, salts: 0 })
        );
        assert_eq!(
            hex_key_pairs(&["".into()], &["".into()]).map(|v| v.len()),
            Err(SettingsError::EmptyKey { index: 0 })
        );
        assert_eq!(format!("{:?}", KeyPair::new(b"k", b"s")), "Ok(KeyPair(..))");
    }

    #[test]
    fn source_patterns() {
        let p = SourcePattern::new("https://*.cdn.example.com/img/").unwrap();
        assert!(p.matches("https://a.cdn.example.com/img/x.jpg"));
        assert!(p.matches("https://.cdn.example.com/img/x.jpg"));
        assert!(!p.matches("https://a/b.cdn.example.com/img/x.jpg"));
        assert!(!p.matches("http://a.cdn.example.com/img/x.jpg"));
        assert!(SourcePattern::new("https://example.com").is_err());
        assert!(SourcePattern::new("example.com/").is_err());
        let star = SourcePattern::new("https://*/").unwrap();
        assert!(star.matches("https://anything.net/x"));
    }

    #[test]
    fn presets_are_validated() {
        let ok = Presets::parse(&BTreeMap::from([(
            "thumb".into(),
            "rs:fill:200:200/q:75".into(),
        )]));
        assert!(ok.is_ok());
        let cases = [
            ("bad", "rs:fill:-1:-2"),
            ("bad", "blur"),
            ("bad", ""),
            ("bad", "nope:1"),
            ("bad", "pr:missing"),
            ("a:b", "q:1"),
        ];
        for (name, value) in cases {
            let err =
                Presets::parse(&BTreeMap::from([(name.to_owned(), value.to_owned())])).unwrap_err();
            assert!(
                matches!(&err, SettingsError::Preset { name: n, .. } if n == name),
                "{err}"
            );
        }
    }

    #[test]
    fn validate_catches_misconfiguration() {
        assert_eq!(
            RouteSettings::default().validate(),
            Err(SettingsError::NoKeys)
        );
        let unsigned = RouteSettings {
            allow_unsigned: true,
            ..RouteSettings::default()
        };
        assert_eq!(unsigned.validate(), Ok(()));
        let bad_size = RouteSettings {
            signature_size: 33,
            ..unsigned.clone()
        };
        assert_eq!(bad_size.validate(), Err(SettingsError::SignatureSize(33)));
        let sec = RouteSettings {
            presets: Presets::parse(&BTreeMap::from([("big".into(), "msr:100".into())])).unwrap(),
            ..unsigned.clone()
        };
        assert!(matches!(sec.validate(), Err(SettingsError::Preset { .. })));
        let allowed = RouteSettings {
            allowed_options: Some(vec!["w".into(), "widht".into()]),
            ..unsigned
        };
        assert_eq!(
            allowed.validate(),
            Err(SettingsError::AllowedOption("widht".into()))
        );
    }
}
