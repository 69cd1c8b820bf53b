//! Canonical form: one spelling per meaning, used as the cache key.
//!
//! Options are written in a fixed order, with their full argument lists and
//! short names, so alias choice, argument order across options, and
//! partial-update history do not show. A group is written when it differs from
//! imgproxy's defaults *or* from the route's baseline (the `default` preset),
//! so re-parsing the canonical path under the same route gives back the same
//! options, and changing the `default` preset changes the keys it affects.
//! `expires` is left out on purpose (it does not change the image).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::options::{Gravity, GravityKind, ProcessingOptions};
use super::source::{Source, escape};

/// Appends a float in its shortest round-tripping form, `-0` as `0`.
fn f(out: &mut String, v: f64) {
    let v = v + 0.0;
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        // Debug prints the shortest string that parses back to the same bits,
        // switching to exponent form for very large or small values.
        let _ = write!(out, "{v:?}");
    }
}

fn b(out: &mut String, v: bool) {
    out.push(if v { '1' } else { '0' });
}

fn gravity(out: &mut String, g: &Gravity) {
    out.push_str(g.kind.name());
    if g.kind != GravityKind::Smart {
        out.push(':');
        f(out, g.x);
        out.push(':');
        f(out, g.y);
    }
}

/// Megapixels exactly as decimal (pixels / 10⁶), so the value parses back to
/// the same pixel count.
fn megapixels(out: &mut String, pixels: u64) {
    let (int, frac) = (pixels / 1_000_000, pixels % 1_000_000);
    if frac == 0 {
        let _ = write!(out, "{int}");
    } else {
        let s = format!("{frac:06}");
        let _ = write!(out, "{int}.{}", s.trim_end_matches('0'));
    }
}

/// Filenames that need no encoding inside a path segment.
fn plain_filename(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

struct Segments(String);

impl Segments {
    fn start(&mut self, name: &str) -> &mut String {
        if !self.0.is_empty() {
            self.0.push('/');
        }
        self.0.push_str(name);
        self.0.push(':');
        &mut self.0
    }
}

impl ProcessingOptions {
    /// Canonical options string relative to imgproxy's defaults, e.g.
    /// `rt:fill/w:300/h:400/g:sm/f:webp` (empty when everything is default).
    ///
    /// Re-parses to the same options on a route without a `default` preset; on
    /// a route with one, use [`ProcessingOptions::canonical_with_base`] with
    /// [`Presets::baseline`](super::Presets::baseline) (as
    /// [`parse_request`](super::parse_request) does).
    pub fn canonical(&self) -> String {
        self.canonical_with_base(&ProcessingOptions::default())
    }

    /// Canonical options string that also spells out every group differing
    /// from `base`, where `base` is the state re-parsing starts from (the
    /// route's `default` preset). Options should be [finalized](Self::finalize).
    pub fn canonical_with_base(&self, base: &ProcessingOptions) -> String {
        let d = ProcessingOptions::default();
        let mut s = Segments(String::with_capacity(64));
        macro_rules! changed {
            ($($field:ident),+) => { $( self.$field != d.$field || self.$field != base.$field )||+ };
        }
        macro_rules! flag {
            ($field:ident, $name:literal) => {
                if changed!($field) {
                    b(s.start($name), self.$field);
                }
            };
        }
        macro_rules! int {
            ($field:ident, $name:literal) => {
                if changed!($field) {
                    let _ = write!(s.start($name), "{}", self.$field);
                }
            };
        }
        if changed!(resizing_type) {
            s.start("rt").push_str(self.resizing_type.name());
        }
        int!(width, "w");
        int!(height, "h");
        int!(min_width, "mw");
        int!(min_height, "mh");
        if changed!(zoom_x, zoom_y) {
            let out = s.start("z");
            f(out, self.zoom_x);
            out.push(':');
            f(out, self.zoom_y);
        }
        if changed!(dpr) {
            f(s.start("dpr"), self.dpr);
        }
        flag!(enlarge, "el");
        for (ext, base_ext, def_ext, name) in [
            (&self.extend, &base.extend, &d.extend, "ex"),
            (
                &self.extend_aspect_ratio,
                &base.extend_aspect_ratio,
                &d.extend_aspect_ratio,
                "exar",
            ),
        ] {
            if ext != base_ext || ext != def_ext {
                let out = s.start(name);
                b(out, ext.enabled);
                if ext.enabled {
                    out.push(':');
                    gravity(out, &ext.gravity);
                }
            }
        }
        if changed!(gravity) {
            gravity(s.start("g"), &self.gravity);
        }
        if changed!(crop) {
            let out = s.start("c");
            f(out, self.crop.width);
            out.push(':');
            f(out, self.crop.height);
            if let Some(g) = &self.crop.gravity {
                out.push(':');
                gravity(out, g);
            }
        }
        if changed!(trim) {
            let out = s.start("t");
            if let Some(t) = self.trim.threshold {
                f(out, t);
                out.push(':');
                if let Some(c) = self.trim.color {
                    out.push_str(&c.to_hex());
                }
                out.push(':');
                b(out, self.trim.equal_hor);
                out.push(':');
                b(out, self.trim.equal_ver);
            }
        }
        if changed!(padding) {
            let p = self.padding;
            let _ = write!(
                s.start("pd"),
                "{}:{}:{}:{}",
                p.top,
                p.right,
                p.bottom,
                p.left
            );
        }
        flag!(auto_rotate, "ar");
        int!(rotate, "rot");
        if changed!(flip_horizontal, flip_vertical) {
            let out = s.start("fl");
            b(out, self.flip_horizontal);
            out.push(':');
            b(out, self.flip_vertical);
        }
        if changed!(background) {
            let out = s.start("bg");
            if let Some(c) = self.background {
                out.push_str(&c.to_hex());
            }
        }
        if changed!(blur) {
            f(s.start("bl"), self.blur);
        }
        if changed!(sharpen) {
            f(s.start("sh"), self.sharpen);
        }
        int!(pixelate, "pix");
        if changed!(watermark) {
            let w = &self.watermark;
            let out = s.start("wm");
            f(out, w.opacity);
            if w.opacity != 0.0 {
                out.push(':');
                out.push_str(w.position.name());
                out.push(':');
                f(out, w.x_offset);
                out.push(':');
                f(out, w.y_offset);
                // Scale 0 (natural size) cannot be written (`wm` needs > 0) and
                // is only ever inherited, so leaving it out re-parses the same.
                if w.scale != 0.0 {
                    out.push(':');
                    f(out, w.scale);
                }
            }
        }
        flag!(strip_metadata, "sm");
        flag!(keep_copyright, "kcr");
        flag!(strip_color_profile, "scp");
        flag!(preserve_hdr, "ph");
        flag!(enforce_thumbnail, "eth");
        int!(quality, "q");
        if changed!(format_quality) {
            let out = s.start("fq");
            let mut first = true;
            let mut entry = |out: &mut String, name: &str, q: u8| {
                if !first {
                    out.push(':');
                }
                first = false;
                let _ = write!(out, "{name}:{q}");
            };
            for (fmt, q) in &self.format_quality {
                entry(out, fmt.name(), *q);
            }
            // `fq` only adds entries; reset what the baseline set but we dropped.
            for fmt in base.format_quality.keys() {
                if !self.format_quality.contains_key(fmt) {
                    entry(out, fmt.name(), 0);
                }
            }
        }
        int!(max_bytes, "mb");
        if changed!(format)
            && let Some(fmt) = self.format
        {
            s.start("f").push_str(fmt.name());
        }
        if changed!(skip_processing) && !self.skip_processing.is_empty() {
            let out = s.start("skp");
            for (i, fmt) in self.skip_processing.iter().enumerate() {
                if i > 0 {
                    out.push(':');
                }
                out.push_str(fmt.name());
            }
        }
        flag!(raw, "raw");
        if changed!(cachebuster) {
            s.start("cb")
                .push_str(self.cachebuster.as_deref().unwrap_or(""));
        }
        if changed!(filename) {
            let out = s.start("fn");
            match self.filename.as_deref() {
                Some(name) if plain_filename(name) => out.push_str(name),
                Some(name) => {
                    out.push_str(&URL_SAFE_NO_PAD.encode(name));
                    out.push_str(":1");
                }
                None => {}
            }
        }
        flag!(return_attachment, "att");
        if changed!(max_src_resolution)
            && let Some(p) = self.max_src_resolution
        {
            megapixels(s.start("msr"), p);
        }
        if changed!(max_src_file_size)
            && let Some(v) = self.max_src_file_size
        {
            let _ = write!(s.start("msfs"), "{v}");
        }
        if changed!(max_animation_frames)
            && let Some(v) = self.max_animation_frames
        {
            let _ = write!(s.start("maf"), "{v}");
        }
        if changed!(max_animation_frame_resolution)
            && let Some(p) = self.max_animation_frame_resolution
        {
            megapixels(s.start("mafr"), p);
        }
        if changed!(max_result_dimension)
            && let Some(v) = self.max_result_dimension
        {
            let _ = write!(s.start("mrd"), "{v}");
        }
        s.0
    }
}

/// The canonical request path (what follows the signature segment):
/// `/<canonical options>/plain/<escaped source>`. Parse it back with
/// [`parse_canonical`](super::parse_canonical).
pub fn canonical_path(options_canonical: &str, source: &Source) -> String {
    let url = source.to_url();
    let mut out = String::with_capacity(options_canonical.len() + url.len() + 10);
    out.push('/');
    if !options_canonical.is_empty() {
        out.push_str(options_canonical);
        out.push('/');
    }
    out.push_str("plain/");
    let url: &str = match source {
        // Drop the leading '/' for readability, unless the first segment has
        // a ':' (it would then read as a scheme).
        Source::Relative(p) => match p.strip_prefix('/') {
            Some(rest) if !rest.split('/').next().unwrap_or("").contains(':') => rest,
            _ => p,
        },
        _ => &url,
    };
    escape(url, &mut out, |c| {
        c <= b' ' || c >= 0x7f || matches!(c, b'%' | b'?' | b'#' | b'@')
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Format, ResizingType};

    #[test]
    fn floats_and_megapixels() {
        let mut s = String::new();
        for v in [0.0, -0.0, 1.0, 0.1, 1e-7, 2.5e20, -3.0] {
            f(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 0 1 0.1 1e-7 2.5e20 -3 ");
        let mut m = String::new();
        megapixels(&mut m, 1_234_500);
        m.push(' ');
        megapixels(&mut m, 50_000_000);
        assert_eq!(m, "1.2345 50");
    }

    #[test]
    fn default_is_empty_and_order_is_fixed() {
        assert_eq!(ProcessingOptions::default().canonical(), "");
        let o = ProcessingOptions {
            format: Some(Format::Webp),
            width: 300,
            resizing_type: ResizingType::Fill,
            ..ProcessingOptions::default()
        };
        assert_eq!(o.canonical(), "rt:fill/w:300/f:webp");
    }

    #[test]
    fn paths() {
        assert_eq!(
            canonical_path("w:1", &Source::Http("http://e.com/a@b?c=%20".into())),
            "/w:1/plain/http://e.com/a%40b%3Fc=%2520"
        );
        assert_eq!(
            canonical_path("", &Source::Relative("/a/b.jpg".into())),
            "/plain/a/b.jpg"
        );
        assert_eq!(
            canonical_path("", &Source::Relative("/a:/b.jpg".into())),
            "/plain//a:/b.jpg"
        );
        assert_eq!(
            canonical_path("", &Source::Local("/100% b.jpg".into())),
            "/plain/local:///100%2525%2520b.jpg"
        );
    }
}
