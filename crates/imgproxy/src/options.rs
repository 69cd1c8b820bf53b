//! Typed processing options with imgproxy's defaults.
//!
//! The struct mirrors imgproxy's option *state*, not its URL syntax: options that
//! imgproxy applies partially (gravity offsets kept when only the type changes,
//! padding copied CSS-style, …) land in the same fields, and
//! [`ProcessingOptions::finalize`] drops state that can no longer matter so that
//! two requests meaning the same thing compare equal.

use std::collections::BTreeMap;

pub use super::format::Format;

/// `resizing_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResizingType {
    /// Keep aspect ratio, fit inside the box (default).
    #[default]
    Fit,
    /// Keep aspect ratio, fill the box and crop the overflow.
    Fill,
    /// Like `fill` but never enlarges the result past the source.
    FillDown,
    /// Ignore aspect ratio.
    Force,
    /// `fill` if source and box orientation match, else `fit`.
    Auto,
}

impl ResizingType {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "fit" => ResizingType::Fit,
            "fill" => ResizingType::Fill,
            "fill-down" => ResizingType::FillDown,
            "force" => ResizingType::Force,
            "auto" => ResizingType::Auto,
            _ => return None,
        })
    }

    /// The URL spelling.
    pub fn name(self) -> &'static str {
        match self {
            ResizingType::Fit => "fit",
            ResizingType::Fill => "fill",
            ResizingType::FillDown => "fill-down",
            ResizingType::Force => "force",
            ResizingType::Auto => "auto",
        }
    }
}

/// Gravity anchors, smart gravity, focus point, and the watermark-only `re`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GravityKind {
    /// `ce` (default).
    #[default]
    Center,
    /// `no`.
    North,
    /// `ea`.
    East,
    /// `so`.
    South,
    /// `we`.
    West,
    /// `nowe`.
    NorthWest,
    /// `noea`.
    NorthEast,
    /// `sowe`.
    SouthWest,
    /// `soea`.
    SouthEast,
    /// `sm`: libvips smart crop (crop/resize gravity only).
    Smart,
    /// `fp:x:y`: focus point, offsets are relative 0..=1.
    FocusPoint,
    /// `re`: tile the watermark (watermark position only).
    Replicate,
}

impl GravityKind {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ce" => GravityKind::Center,
            "no" => GravityKind::North,
            "ea" => GravityKind::East,
            "so" => GravityKind::South,
            "we" => GravityKind::West,
            "nowe" => GravityKind::NorthWest,
            "noea" => GravityKind::NorthEast,
            "sowe" => GravityKind::SouthWest,
            "soea" => GravityKind::SouthEast,
            "sm" => GravityKind::Smart,
            "fp" => GravityKind::FocusPoint,
            "re" => GravityKind::Replicate,
            _ => return None,
        })
    }

    /// The URL spelling.
    pub fn name(self) -> &'static str {
        match self {
            GravityKind::Center => "ce",
            GravityKind::North => "no",
            GravityKind::East => "ea",
            GravityKind::South => "so",
            GravityKind::West => "we",
            GravityKind::NorthWest => "nowe",
            GravityKind::NorthEast => "noea",
            GravityKind::SouthWest => "sowe",
            GravityKind::SouthEast => "soea",
            GravityKind::Smart => "sm",
            GravityKind::FocusPoint => "fp",
            GravityKind::Replicate => "re",
        }
    }

    /// One of the nine compass anchors.
    pub fn is_anchor(self) -> bool {
        !matches!(
            self,
            GravityKind::Smart | GravityKind::FocusPoint | GravityKind::Replicate
        )
    }
}

/// A gravity with its offsets (`x`/`y` ≥ 1 absolute px, < 1 relative; for
/// `fp` the focus point in 0..=1; always 0 for `sm`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gravity {
    /// Anchor or special gravity.
    pub kind: GravityKind,
    /// X offset (or focus point x).
    pub x: f64,
    /// Y offset (or focus point y).
    pub y: f64,
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb {
    /// Parses `RGB` or `RRGGBB` hex (no `#`), as imgproxy.
    pub fn from_hex(s: &str) -> Option<Rgb> {
        let b = s.as_bytes();
        if !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b.len() {
            3 => Some(Rgb {
                r: nib(b[0])? * 17,
                g: nib(b[1])? * 17,
                b: nib(b[2])? * 17,
            }),
            6 => Some(Rgb {
                r: nib(b[0])? * 16 + nib(b[1])?,
                g: nib(b[2])? * 16 + nib(b[3])?,
                b: nib(b[4])? * 16 + nib(b[5])?,
            }),
            _ => None,
        }
    }

    /// Lower-case `rrggbb`.
    pub fn to_hex(self) -> String {
        format!("{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// `extend` / `extend_aspect_ratio` state.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extend {
    /// Whether to extend.
    pub enabled: bool,
    /// Where to place the image on the extended canvas (`sm` not allowed).
    pub gravity: Gravity,
}

/// `crop` state; `width == height == 0` means no crop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Crop {
    /// Width (≥ 1 px, < 1 relative, 0 full).
    pub width: f64,
    /// Height (≥ 1 px, < 1 relative, 0 full).
    pub height: f64,
    /// Crop gravity; `None` falls back to the main `gravity`.
    pub gravity: Option<Gravity>,
}

/// `trim` state; disabled while `threshold` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trim {
    /// Colour-distance threshold.
    pub threshold: Option<f64>,
    /// Colour to trim; `None` = detect from the top-left pixel.
    pub color: Option<Rgb>,
    /// Trim equally left and right.
    pub equal_hor: bool,
    /// Trim equally top and bottom.
    pub equal_ver: bool,
}

/// `padding` in CSS order, before `dpr` scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding {
    /// Top.
    pub top: u32,
    /// Right.
    pub right: u32,
    /// Bottom.
    pub bottom: u32,
    /// Left.
    pub left: u32,
}

/// `watermark` state; disabled while `opacity` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Watermark {
    /// 0..=1.
    pub opacity: f64,
    /// Anchor or `re` (tile).
    pub position: GravityKind,
    /// X offset.
    pub x_offset: f64,
    /// Y offset.
    pub y_offset: f64,
    /// Scale relative to the result; 0 = natural size.
    pub scale: f64,
}

/// The validated, typed result of parsing a URL's options (after presets).
///
/// Defaults are imgproxy's (`Default`), with the server-wide imgproxy defaults
/// for `auto_rotate`, `strip_metadata`, `keep_copyright`, `strip_color_profile`
/// (all `true`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessingOptions {
    /// `resizing_type`/`rt`.
    pub resizing_type: ResizingType,
    /// `width`/`w` (0 = auto).
    pub width: u32,
    /// `height`/`h` (0 = auto).
    pub height: u32,
    /// `min-width`/`mw`.
    pub min_width: u32,
    /// `min-height`/`mh`.
    pub min_height: u32,
    /// `zoom`/`z` x factor (> 0).
    pub zoom_x: f64,
    /// `zoom`/`z` y factor (> 0).
    pub zoom_y: f64,
    /// `dpr` (> 0).
    pub dpr: f64,
    /// `enlarge`/`el`.
    pub enlarge: bool,
    /// `extend`/`ex`.
    pub extend: Extend,
    /// `extend_aspect_ratio`/`extend_ar`/`exar`.
    pub extend_aspect_ratio: Extend,
    /// `gravity`/`g`.
    pub gravity: Gravity,
    /// `crop`/`c`.
    pub crop: Crop,
    /// `trim`/`t`.
    pub trim: Trim,
    /// `padding`/`pd`.
    pub padding: Padding,
    /// `auto_rotate`/`ar`.
    pub auto_rotate: bool,
    /// `rotate`/`rot`, normalised to 0, 90, 180 or 270.
    pub rotate: u16,
    /// `flip`/`fl` horizontal.
    pub flip_horizontal: bool,
    /// `flip`/`fl` vertical.
    pub flip_vertical: bool,
    /// `background`/`bg`; `None` = keep transparency.
    pub background: Option<Rgb>,
    /// `blur`/`bl` sigma (0 = off).
    pub blur: f64,
    /// `sharpen`/`sh` sigma (0 = off).
    pub sharpen: f64,
    /// `pixelate`/`pix` block size (0 = off; imgproxy's 1 is normalised to 0).
    pub pixelate: u32,
    /// `watermark`/`wm`.
    pub watermark: Watermark,
    /// `strip_metadata`/`sm`.
    pub strip_metadata: bool,
    /// `keep_copyright`/`kcr`.
    pub keep_copyright: bool,
    /// `strip_color_profile`/`scp`.
    pub strip_color_profile: bool,
    /// `preserve_hdr`/`ph`.
    pub preserve_hdr: bool,
    /// `enforce_thumbnail`/`eth`.
    pub enforce_thumbnail: bool,
    /// `quality`/`q` (0 = route default).
    pub quality: u8,
    /// `format_quality`/`fq` (only non-zero entries are kept).
    pub format_quality: BTreeMap<Format, u8>,
    /// `max_bytes`/`mb` (0 = off).
    pub max_bytes: u64,
    /// `format`/`f`/`ext` or the URL extension; `None` = negotiate.
    pub format: Option<Format>,
    /// `skip_processing`/`skp` (sorted, unique).
    pub skip_processing: Vec<Format>,
    /// `raw`.
    pub raw: bool,
    /// `cachebuster`/`cb`.
    pub cachebuster: Option<String>,
    /// `expires`/`exp` as a Unix timestamp (not part of the canonical form).
    pub expires: Option<i64>,
    /// `filename`/`fn` (decoded).
    pub filename: Option<String>,
    /// `return_attachment`/`att`.
    pub return_attachment: bool,
    /// `max_src_resolution`/`msr`, in pixels.
    pub max_src_resolution: Option<u64>,
    /// `max_src_file_size`/`msfs`, in bytes.
    pub max_src_file_size: Option<i64>,
    /// `max_animation_frames`/`maf`.
    pub max_animation_frames: Option<u32>,
    /// `max_animation_frame_resolution`/`mafr`, in pixels.
    pub max_animation_frame_resolution: Option<u64>,
    /// `max_result_dimension`/`mrd`, in pixels.
    pub max_result_dimension: Option<i64>,
}

impl Default for ProcessingOptions {
    fn default() -> Self {
        ProcessingOptions {
            resizing_type: ResizingType::Fit,
            width: 0,
            height: 0,
            min_width: 0,
            min_height: 0,
            zoom_x: 1.0,
            zoom_y: 1.0,
            dpr: 1.0,
            enlarge: false,
            extend: Extend::default(),
            extend_aspect_ratio: Extend::default(),
            gravity: Gravity::default(),
            crop: Crop::default(),
            trim: Trim::default(),
            padding: Padding::default(),
            auto_rotate: true,
            rotate: 0,
            flip_horizontal: false,
            flip_vertical: false,
            background: None,
            blur: 0.0,
            sharpen: 0.0,
            pixelate: 0,
            watermark: Watermark::default(),
            strip_metadata: true,
            keep_copyright: true,
            strip_color_profile: true,
            preserve_hdr: false,
            enforce_thumbnail: false,
            quality: 0,
            format_quality: BTreeMap::new(),
            max_bytes: 0,
            format: None,
            skip_processing: Vec::new(),
            raw: false,
            cachebuster: None,
            expires: None,
            filename: None,
            return_attachment: false,
            max_src_resolution: None,
            max_src_file_size: None,
            max_animation_frames: None,
            max_animation_frame_resolution: None,
            max_result_dimension: None,
        }
    }
}

impl ProcessingOptions {
    /// Drops state that cannot influence the result, so that equal meaning means
    /// equal value (and equal canonical form). Idempotent.
    ///
    /// imgproxy keeps e.g. a watermark position after `wm:0`; it only matters
    /// if a later option re-enables the feature, which cannot happen once
    /// parsing is over.
    pub fn finalize(&mut self) {
        if !self.extend.enabled {
            self.extend.gravity = Gravity::default();
        }
        if !self.extend_aspect_ratio.enabled {
            self.extend_aspect_ratio.gravity = Gravity::default();
        }
        if self.crop.width == 0.0 && self.crop.height == 0.0 {
            self.crop = Crop::default();
        }
        if self.trim.threshold.is_none() {
            self.trim = Trim::default();
        }
        if self.pixelate <= 1 {
            self.pixelate = 0;
        }
        if self.watermark.opacity == 0.0 {
            self.watermark = Watermark::default();
        }
        self.format_quality.retain(|_, q| *q > 0);
        self.skip_processing.sort_unstable();
        self.skip_processing.dedup();
        if self.cachebuster.as_deref() == Some("") {
            self.cachebuster = None;
        }
        if self.filename.as_deref() == Some("") {
            self.filename = None;
        }
    }

    /// A copy without the fields the canonical form leaves out (`expires`).
    pub fn without_expiry(&self) -> ProcessingOptions {
        ProcessingOptions {
            expires: None,
            ..self.clone()
        }
    }

    /// Quality to encode `format` with: `q`, else `fq` for that format, else the
    /// route's per-format default, else the route's default (imgproxy's order).
    pub fn quality_for(
        &self,
        format: Format,
        route_format_quality: &BTreeMap<Format, u8>,
        route_quality: u8,
    ) -> u8 {
        if self.quality > 0 {
            return self.quality;
        }
        if let Some(q) = self.format_quality.get(&format).copied().filter(|q| *q > 0) {
            return q;
        }
        if let Some(q) = route_format_quality
            .get(&format)
            .copied()
            .filter(|q| *q > 0)
        {
            return q;
        }
        route_quality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_colors() {
        assert_eq!(
            Rgb::from_hex("fff"),
            Some(Rgb {
                r: 255,
                g: 255,
                b: 255
            })
        );
        assert_eq!(
            Rgb::from_hex("FFddEE"),
            Some(Rgb {
                r: 255,
                g: 0xdd,
                b: 0xee
            })
        );
        assert_eq!(Rgb::from_hex("ffff"), None);
        assert_eq!(Rgb::from_hex("+ff"), None);
        assert_eq!(
            Rgb::from_hex("ffddee").map(Rgb::to_hex).as_deref(),
            Some("ffddee")
        );
    }

    #[test]
    fn finalize_is_idempotent_and_normalises() {
        let mut o = ProcessingOptions {
            pixelate: 1,
            watermark: Watermark {
                opacity: 0.0,
                position: GravityKind::Replicate,
                ..Watermark::default()
            },
            ..ProcessingOptions::default()
        };
        o.finalize();
        let once = o.clone();
        o.finalize();
        assert_eq!(o, once);
        assert_eq!(o, ProcessingOptions::default());
    }
}
