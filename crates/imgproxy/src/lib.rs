//! imgproxy v4 URL API: from a request path to a validated, canonical image request.
//!
//! Pure logic, no I/O. Layout:
//!
//! * [`settings`] — the route's runtime model ([`RouteSettings`], keys, presets,
//!   allowed sources), built once from config.
//! * `path` — the grammar: signature split, path re-denormalisation, plain and
//!   Base64 sources.
//! * [`signature`] — HMAC-SHA256 signing and constant-time verification.
//! * `apply`/`args` — the 45 open-source options and their argument rules.
//! * [`options`], [`format`](mod@format) — the typed result ([`ProcessingOptions`], [`Format`], …).
//! * [`source`] — source classification and path normalisation ([`Source`]).
//! * [`canonical`] — the canonical form used as the cache key.
//! * [`query`] — the query API (`?url=&w=&h=&f=&q=&t=&sig=`), translated to the same options.
//! * [`negotiate`](mod@negotiate) — `Accept`/client hints, `Vary`, output-format choice.
//! * [`error`] — [`UrlError`] with imgproxy's HTTP statuses.
//!
//! The order of checks follows imgproxy: signature (403) → options (404, or
//! 403 for security options) → source rules (404) → output format (422).

pub mod canonical;
pub mod error;
pub mod format;
pub mod internal;
pub mod negotiate;
pub mod options;
pub mod query;
pub mod settings;
pub mod signature;
pub mod source;

mod apply;
mod args;
mod path;

#[cfg(test)]
mod tests;

pub use canonical::canonical_path;
pub use error::UrlError;
pub use negotiate::{Negotiation, RequestHints, choose_format, choose_format_animated, negotiate};
pub use options::{
    Crop, Extend, Format, Gravity, GravityKind, Padding, ProcessingOptions, ResizingType, Rgb,
    Trim, Watermark,
};
pub use settings::{
    KeyPair, Presets, RouteSettings, SettingsError, SourcePattern, hex_key_pairs,
    parse_allowed_sources,
};
pub use signature::sign_path;
pub use source::Source;

use apply::Applier;

/// A parsed, verified, canonicalised image request.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// Options after client hints, the `default` preset, named presets and
    /// URL options, finalized.
    pub options: ProcessingOptions,
    /// Where to fetch the source.
    pub source: Source,
    /// What the client may receive and which headers to list in `Vary`.
    pub negotiation: Negotiation,
    /// Canonical path (see [`canonical_path`]); independent of signature,
    /// `expires`, alias spelling and option order. Combine with
    /// [`ImageRequest::cache_key`] for the variant key.
    pub canonical: String,
    /// Presets applied, in order of first use (for logs and metrics).
    pub used_presets: Vec<String>,
    /// Whether a valid signature (or trusted signature) was presented;
    /// `false` only on routes with `allow_unsigned`.
    pub signed: bool,
    /// `/info` request (not supported yet: always `false`).
    pub info: bool,
}

impl ImageRequest {
    /// The explicit output format from the URL (`format` option or extension).
    pub fn explicit_format(&self) -> Option<Format> {
        self.options.format
    }

    /// Output format once the source format is known.
    pub fn output_format(&self, source_format: Option<Format>, animated: bool) -> Format {
        choose_format_animated(
            self.options.format,
            &self.negotiation,
            source_format,
            animated,
        )
    }

    /// Cache variant key: the canonical path plus the `Accept`-driven format
    /// when `Accept` can change the answer (`#avif`, `#webp`). Client hints are
    /// already folded into the canonical options.
    pub fn cache_key(&self) -> String {
        match self.negotiation.preferred(self.options.format) {
            Some(f) => format!("{}#{}", self.canonical, f.name()),
            None => self.canonical.clone(),
        }
    }
}

/// Parses and verifies an imgproxy request.
///
/// * `path` — the raw request path after the route prefix, as on the wire
///   (not percent-decoded), starting with `/<signature>/`. A `?query` is
///   ignored.
/// * `hints` — `Accept` and client-hint headers ([`RequestHints::from_headers`]).
/// * `settings` — the route's settings (validated once at load).
/// * `now_unix` — current time for `expires`.
///
/// Never panics; every rejection is a [`UrlError`] carrying its HTTP status.
pub fn parse_request(
    path: &str,
    hints: &RequestHints<'_>,
    settings: &RouteSettings,
    now_unix: i64,
) -> Result<ImageRequest, UrlError> {
    let (signature, rest) = path::split_signature(path)?;
    let signed = signature::verify(settings, signature, &rest)?;
    let mode = Mode {
        only_presets: settings.only_presets,
        allowed: settings.allowed_options.as_deref(),
        allow_security: settings.allow_security_options,
    };
    let mut req = parse_after_signature(&rest, hints, settings, now_unix, mode)?;
    req.signed = signed;
    Ok(req)
}

/// Parses a query-API request (`url=…&w=…&sig=…`, without the `?`): the same checks, options
/// and canonical form as [`parse_request`], after [`query::translate`].
pub fn parse_query_request(
    query: &str,
    hints: &RequestHints<'_>,
    settings: &RouteSettings,
    now_unix: i64,
) -> Result<ImageRequest, UrlError> {
    let q = query::translate(query)?;
    // No `sig` at all reads like imgproxy's `unsafe`: accepted only where unsigned URLs are.
    let signed = signature::verify(
        settings,
        q.signature.as_deref().unwrap_or(""),
        &q.signed_text,
    )?;
    let mode = Mode {
        only_presets: settings.only_presets,
        allowed: settings.allowed_options.as_deref(),
        allow_security: settings.allow_security_options,
    };
    if mode.only_presets {
        return Err(UrlError::InvalidPath(
            "this route accepts presets only: use the path form".into(),
        ));
    }
    let mut req = parse_after_signature(&q.path, hints, settings, now_unix, mode)?;
    req.signed = signed;
    Ok(req)
}

/// Parses a canonical path produced by [`canonical_path`] (no signature
/// segment, no headers). For trusted input only — tools, purge by key, tests:
/// it skips the signature, the allowed-options list and the security-option
/// gate, since the canonical form was produced after those checks.
pub fn parse_canonical(
    canonical: &str,
    settings: &RouteSettings,
    now_unix: i64,
) -> Result<ImageRequest, UrlError> {
    let rest = path::redenormalize(canonical.split_once('?').map_or(canonical, |(p, _)| p));
    let mode = Mode {
        only_presets: false,
        allowed: None,
        allow_security: true,
    };
    parse_after_signature(&rest, &RequestHints::default(), settings, now_unix, mode)
}

#[derive(Clone, Copy)]
struct Mode<'s> {
    only_presets: bool,
    allowed: Option<&'s [String]>,
    allow_security: bool,
}

fn parse_after_signature(
    rest: &str,
    hints: &RequestHints<'_>,
    settings: &RouteSettings,
    now_unix: i64,
    mode: Mode<'_>,
) -> Result<ImageRequest, UrlError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let mut o = ProcessingOptions::default();
    // Client hints seed the options before any preset or URL option, so those
    // override them (imgproxy v4; width is in CSS pixels, hence / dpr).
    let (hint_dpr, hint_width) = negotiate::client_hints(hints, settings);
    if let Some(dpr) = hint_dpr {
        o.dpr = dpr;
    }
    if let Some(w) = hint_width {
        o.width = (f64::from(w) / hint_dpr.unwrap_or(1.0)).round() as u32;
    }
    let mut applier = Applier::new(settings.presets.defs(), mode.allow_security, now_unix);
    if settings.presets.contains("default") {
        applier.apply_presets(&mut o, ["default"])?;
    }
    let first = parts.first().copied().unwrap_or("");
    let source_parts = if mode.only_presets {
        applier.apply_presets(&mut o, first.split(':'))?;
        &parts[1..]
    } else {
        if options::ResizingType::from_name(first).is_some() {
            return Err(UrlError::BasicUrlFormat);
        }
        let n = parts.iter().take_while(|p| p.contains(':')).count();
        for segment in &parts[..n] {
            applier.apply_segment(&mut o, segment, mode.allowed)?;
        }
        &parts[n..]
    };
    let (url, ext) = path::decode_source(source_parts, settings.base64_url_includes_filename)?;
    if !o.raw
        && let Some(ext) = ext
    {
        o.format = Some(apply::format_arg(&[ext.as_str()])?);
    }
    o.finalize();
    let source = source::classify(&url, settings)?;
    if !o.raw
        && let Some(f) = o.format.filter(|f| !f.is_output())
    {
        return Err(UrlError::UnsupportedOutputFormat(f));
    }
    let negotiation = negotiate::negotiate(hints, settings, &o);
    let canonical = canonical_path(&o.canonical_with_base(settings.presets.baseline()), &source);
    let used_presets = applier
        .used_presets
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    Ok(ImageRequest {
        options: o,
        source,
        negotiation,
        canonical,
        used_presets,
        signed: false,
        info: false,
    })
}
