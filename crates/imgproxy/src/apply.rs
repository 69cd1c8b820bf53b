//! Applying one URL option (`name:arg1:arg2…`) to [`ProcessingOptions`].
//!
//! Argument rules follow imgproxy v4's parser (`options/parser/apply.go`) option
//! by option, including its quirks (partial updates, empty arguments meaning
//! "leave as is"), because signed URLs generated for imgproxy must mean the
//! same thing here.

use base64::Engine as _;

use super::args::{
    CROP_G, EXTEND_AR_G, EXTEND_G, GRAVITY_G, bool_arg, int_arg, max_args, mp_to_pixels,
    non_neg_f64, non_neg_u32, parse_bool, parse_gravity, plain_f64, pos_f64, u8_digits,
};
use super::error::UrlError;
use super::options::{Format, GravityKind, ProcessingOptions, ResizingType, Rgb};

/// Upper bound on preset applications per request (and per preset at
/// validation), so that presets referencing each other cannot explode.
pub(crate) const MAX_PRESET_EXPANSIONS: usize = 256;

/// Whether `name` is one of the five options gated by `allow_security_options`.
pub(crate) fn is_security_option(name: &str) -> bool {
    matches!(
        name,
        "max_src_resolution"
            | "msr"
            | "max_src_file_size"
            | "msfs"
            | "max_animation_frames"
            | "maf"
            | "max_animation_frame_resolution"
            | "mafr"
            | "max_result_dimension"
            | "mrd"
    )
}

/// Every accepted option name and alias (for validating `allowed_options`).
pub(crate) const OPTION_NAMES: &[&str] = &[
    "resize",
    "rs",
    "size",
    "s",
    "resizing_type",
    "rt",
    "width",
    "w",
    "height",
    "h",
    "min-width",
    "mw",
    "min-height",
    "mh",
    "zoom",
    "z",
    "dpr",
    "enlarge",
    "el",
    "extend",
    "ex",
    "extend_aspect_ratio",
    "extend_ar",
    "exar",
    "gravity",
    "g",
    "crop",
    "c",
    "trim",
    "t",
    "padding",
    "pd",
    "auto_rotate",
    "ar",
    "rotate",
    "rot",
    "flip",
    "fl",
    "background",
    "bg",
    "blur",
    "bl",
    "sharpen",
    "sh",
    "pixelate",
    "pix",
    "watermark",
    "wm",
    "strip_metadata",
    "sm",
    "keep_copyright",
    "kcr",
    "strip_color_profile",
    "scp",
    "preserve_hdr",
    "ph",
    "enforce_thumbnail",
    "eth",
    "quality",
    "q",
    "format_quality",
    "fq",
    "max_bytes",
    "mb",
    "format",
    "f",
    "ext",
    "skip_processing",
    "skp",
    "raw",
    "cachebuster",
    "cb",
    "expires",
    "exp",
    "filename",
    "fn",
    "return_attachment",
    "att",
    "preset",
    "pr",
    "max_src_resolution",
    "msr",
    "max_src_file_size",
    "msfs",
    "max_animation_frames",
    "maf",
    "max_animation_frame_resolution",
    "mafr",
    "max_result_dimension",
    "mrd",
];

/// Preset definitions: name → its `name:args` segments.
pub(crate) type PresetDefs = std::collections::BTreeMap<String, Vec<String>>;

/// Per-request option application state: preset lookup, loop detection and
/// the expansion budget.
pub(crate) struct Applier<'s> {
    /// Preset name → its `name:args` segments (what `settings::Presets` parsed).
    presets: &'s PresetDefs,
    allow_security: bool,
    now_unix: i64,
    /// Presets applied so far, in order of first use.
    pub(crate) used_presets: Vec<&'s str>,
    /// Presets currently being expanded (imgproxy detects loops on this chain).
    chain: Vec<&'s str>,
    expansions: usize,
}

impl<'s> Applier<'s> {
    pub(crate) fn new(presets: &'s PresetDefs, allow_security: bool, now_unix: i64) -> Self {
        Applier {
            presets,
            allow_security,
            now_unix,
            used_presets: Vec::new(),
            chain: Vec::new(),
            expansions: 0,
        }
    }

    /// Applies one `name:args` segment. `allowed` (URL level only) restricts
    /// option names; presets' own options are never checked, as in imgproxy.
    pub(crate) fn apply_segment(
        &mut self,
        o: &mut ProcessingOptions,
        segment: &str,
        allowed: Option<&[String]>,
    ) -> Result<(), UrlError> {
        let mut it = segment.split(':');
        let name = it.next().unwrap_or("");
        if let Some(allowed) = allowed
            && !allowed.iter().any(|a| a == name)
        {
            return Err(UrlError::ForbiddenOption(super::error::echo(name)));
        }
        let args: Vec<&str> = it.collect();
        self.apply(o, name, &args)
    }

    /// Applies presets by name (the `preset` option and only-presets mode).
    pub(crate) fn apply_presets<'a, I>(
        &mut self,
        o: &mut ProcessingOptions,
        names: I,
    ) -> Result<(), UrlError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        for name in names {
            let Some((key, segments)) = self
                .presets
                .get_key_value(name)
                .map(|(k, v)| (k.as_str(), v.as_slice()))
            else {
                return Err(UrlError::UnknownPreset(super::error::echo(name)));
            };
            // A preset already being expanded higher up is a loop: skip it
            // silently, as imgproxy does (it only logs a warning).
            if self.chain.contains(&key) {
                continue;
            }
            self.expansions += 1;
            if self.expansions > MAX_PRESET_EXPANSIONS {
                return Err(UrlError::TooManyPresets);
            }
            if !self.used_presets.contains(&key) {
                self.used_presets.push(key);
            }
            self.chain.push(key);
            for segment in segments {
                self.apply_segment(o, segment, None)?;
            }
            self.chain.pop();
        }
        Ok(())
    }

    fn security(&self, name: &'static str) -> Result<(), UrlError> {
        if self.allow_security {
            Ok(())
        } else {
            Err(UrlError::SecurityOptionsNotAllowed(name))
        }
    }

    /// Applies one option by (alias) name.
    pub(crate) fn apply(
        &mut self,
        o: &mut ProcessingOptions,
        name: &str,
        args: &[&str],
    ) -> Result<(), UrlError> {
        // imgproxy indexes args[0] freely because a segment always has one;
        // presets-only callers never get here with none, but stay total anyway.
        let a0 = args.first().copied().unwrap_or("");
        match name {
            "resize" | "rs" => {
                max_args("resize", args, 8)?;
                if !a0.is_empty() {
                    o.resizing_type = resizing_type(&args[..1])?;
                }
                if args.len() > 1 {
                    size(o, &args[1..])?;
                }
            }
            "size" | "s" => size(o, args)?,
            "resizing_type" | "rt" => o.resizing_type = resizing_type(args)?,
            "width" | "w" => o.width = single_u32("width", args)?,
            "height" | "h" => o.height = single_u32("height", args)?,
            "min-width" | "mw" => o.min_width = single_u32("min-width", args)?,
            "min-height" | "mh" => o.min_height = single_u32("min-height", args)?,
            "zoom" | "z" => {
                max_args("zoom", args, 2)?;
                o.zoom_x = pos_f64("zoom", a0)?;
                o.zoom_y = match args.get(1) {
                    Some(y) => pos_f64("zoom", y)?,
                    None => o.zoom_x,
                };
            }
            "dpr" => {
                max_args("dpr", args, 1)?;
                o.dpr = pos_f64("dpr", a0)?;
            }
            "enlarge" | "el" => o.enlarge = bool_arg("enlarge", args)?,
            "extend" | "ex" => extend(&mut o.extend, "extend", args, &EXTEND_G)?,
            "extend_aspect_ratio" | "extend_ar" | "exar" => extend(
                &mut o.extend_aspect_ratio,
                "extend_aspect_ratio",
                args,
                &EXTEND_AR_G,
            )?,
            "gravity" | "g" => o.gravity = parse_gravity(&GRAVITY_G, o.gravity, args)?,
            "crop" | "c" => {
                o.crop.width = non_neg_f64("crop.width", a0)?;
                if let Some(h) = args.get(1) {
                    o.crop.height = non_neg_f64("crop.height", h)?;
                }
                if args.len() > 2 {
                    let current = o.crop.gravity.unwrap_or_default();
                    o.crop.gravity = Some(parse_gravity(&CROP_G, current, &args[2..])?);
                }
            }
            "trim" | "t" => trim(o, args)?,
            "padding" | "pd" => padding(o, args)?,
            "auto_rotate" | "ar" => o.auto_rotate = bool_arg("auto_rotate", args)?,
            "rotate" | "rot" => {
                max_args("rotate", args, 1)?;
                let angle = int_arg("rotate", a0)?;
                if angle % 90 != 0 {
                    return Err(UrlError::rule(
                        "rotate",
                        "Rotation angle must be a multiple of 90".into(),
                    ));
                }
                // 450 and -90 rotate like 90 and 270; normalising keeps one
                // spelling per result (imgproxy's gravity remap only knows 90/180/270).
                o.rotate = angle.rem_euclid(360) as u16;
            }
            "flip" | "fl" => {
                max_args("flip", args, 2)?;
                if !a0.is_empty() {
                    o.flip_horizontal = parse_bool(a0);
                }
                if let Some(v) = args.get(1).filter(|v| !v.is_empty()) {
                    o.flip_vertical = parse_bool(v);
                }
            }
            "background" | "bg" => o.background = background(args)?,
            "blur" | "bl" => {
                max_args("blur", args, 1)?;
                o.blur = non_neg_f64("blur", a0)?;
            }
            "sharpen" | "sh" => {
                max_args("sharpen", args, 1)?;
                o.sharpen = non_neg_f64("sharpen", a0)?;
            }
            "pixelate" | "pix" => o.pixelate = single_u32("pixelate", args)?,
            "watermark" | "wm" => watermark(o, args)?,
            "strip_metadata" | "sm" => o.strip_metadata = bool_arg("strip_metadata", args)?,
            "keep_copyright" | "kcr" => o.keep_copyright = bool_arg("keep_copyright", args)?,
            "strip_color_profile" | "scp" => {
                o.strip_color_profile = bool_arg("strip_color_profile", args)?
            }
            "preserve_hdr" | "ph" => o.preserve_hdr = bool_arg("preserve_hdr", args)?,
            "enforce_thumbnail" | "eth" => {
                o.enforce_thumbnail = bool_arg("enforce_thumbnail", args)?
            }
            "quality" | "q" => {
                max_args("quality", args, 1)?;
                o.quality = quality("quality", a0)?;
            }
            "format_quality" | "fq" => format_quality(o, args)?,
            "max_bytes" | "mb" => {
                max_args("max_bytes", args, 1)?;
                let n = int_arg("max_bytes", a0)?;
                o.max_bytes = u64::try_from(n)
                    .map_err(|_| UrlError::arg("max_bytes", a0, "positive number or 0"))?;
            }
            "format" | "f" | "ext" => o.format = Some(format_arg(args)?),
            "skip_processing" | "skp" => {
                for f in args {
                    let Some(format) = Format::from_name(f) else {
                        return Err(UrlError::rule(
                            "skip_processing",
                            format!("Invalid image format in skip_processing: {f}"),
                        ));
                    };
                    o.skip_processing.push(format);
                }
            }
            "raw" => o.raw = bool_arg("raw", args)?,
            "cachebuster" | "cb" => {
                max_args("cachebuster", args, 1)?;
                o.cachebuster = (!a0.is_empty()).then(|| a0.to_owned());
            }
            "expires" | "exp" => {
                max_args("expires", args, 1)?;
                let ts = int_arg("expires", a0)
                    .map_err(|_| UrlError::arg("expires", a0, "unix timestamp"))?;
                if ts > 0 && ts < self.now_unix {
                    return Err(UrlError::Expired);
                }
                o.expires = (ts > 0).then_some(ts);
            }
            "filename" | "fn" => o.filename = Some(filename(args)?),
            "return_attachment" | "att" => {
                o.return_attachment = bool_arg("return_attachment", args)?
            }
            "preset" | "pr" => self.apply_presets(o, args.iter().copied())?,
            "max_src_resolution" | "msr" => {
                self.security("max_src_resolution")?;
                max_args("max_src_resolution", args, 1)?;
                o.max_src_resolution = Some(mp_to_pixels(non_neg_f64("max_src_resolution", a0)?));
            }
            "max_src_file_size" | "msfs" => {
                self.security("max_src_file_size")?;
                max_args("max_src_file_size", args, 1)?;
                o.max_src_file_size = Some(int_arg("max_src_file_size", a0)?);
            }
            "max_animation_frames" | "maf" => {
                self.security("max_animation_frames")?;
                max_args("max_animation_frames", args, 1)?;
                let n = int_arg("max_animation_frames", a0)?;
                let n = u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| UrlError::arg("max_animation_frames", a0, "positive number"))?;
                o.max_animation_frames = Some(n);
            }
            "max_animation_frame_resolution" | "mafr" => {
                self.security("max_animation_frame_resolution")?;
                max_args("max_animation_frame_resolution", args, 1)?;
                o.max_animation_frame_resolution = Some(mp_to_pixels(non_neg_f64(
                    "max_animation_frame_resolution",
                    a0,
                )?));
            }
            "max_result_dimension" | "mrd" => {
                self.security("max_result_dimension")?;
                max_args("max_result_dimension", args, 1)?;
                o.max_result_dimension = Some(int_arg("max_result_dimension", a0)?);
            }
            _ => return Err(UrlError::UnknownOption(super::error::echo(name))),
        }
        Ok(())
    }
}

fn single_u32(option: &'static str, args: &[&str]) -> Result<u32, UrlError> {
    max_args(option, args, 1)?;
    non_neg_u32(option, args.first().copied().unwrap_or(""))
}

fn resizing_type(args: &[&str]) -> Result<ResizingType, UrlError> {
    max_args("resizing_type", args, 1)?;
    let a0 = args.first().copied().unwrap_or("");
    ResizingType::from_name(a0)
        .ok_or_else(|| UrlError::arg("resizing_type", a0, "fit, fill, fill-down, force, auto"))
}

/// `size:%width:%height:%enlarge:%extend…`; empty arguments leave fields as they are.
fn size(o: &mut ProcessingOptions, args: &[&str]) -> Result<(), UrlError> {
    max_args("size", args, 7)?;
    if let Some(w) = args.first().filter(|s| !s.is_empty()) {
        o.width = non_neg_u32("width", w)?;
    }
    if let Some(h) = args.get(1).filter(|s| !s.is_empty()) {
        o.height = non_neg_u32("height", h)?;
    }
    if let Some(el) = args.get(2).filter(|s| !s.is_empty()) {
        o.enlarge = parse_bool(el);
    }
    if args.get(3).is_some_and(|s| !s.is_empty()) {
        extend(&mut o.extend, "extend", &args[3..], &EXTEND_G)?;
    }
    Ok(())
}

fn extend(
    target: &mut super::options::Extend,
    option: &'static str,
    args: &[&str],
    names: &super::args::GravityNames,
) -> Result<(), UrlError> {
    max_args(option, args, 4)?;
    target.enabled = parse_bool(args.first().copied().unwrap_or(""));
    if args.len() > 1 {
        target.gravity = parse_gravity(names, target.gravity, &args[1..])?;
    }
    Ok(())
}

fn trim(o: &mut ProcessingOptions, args: &[&str]) -> Result<(), UrlError> {
    max_args("trim", args, 4)?;
    let a0 = args.first().copied().unwrap_or("");
    o.trim.threshold = if a0.is_empty() {
        None
    } else {
        Some(plain_f64("trim", a0)?)
    };
    o.trim.color = match args.get(1).filter(|s| !s.is_empty()) {
        Some(c) => Some(
            Rgb::from_hex(c).ok_or_else(|| UrlError::arg("trim.color", c, "hex-encoded color"))?,
        ),
        None => None,
    };
    if let Some(h) = args.get(2).filter(|s| !s.is_empty()) {
        o.trim.equal_hor = parse_bool(h);
    }
    if let Some(v) = args.get(3).filter(|s| !s.is_empty()) {
        o.trim.equal_ver = parse_bool(v);
    }
    Ok(())
}

/// CSS-style: missing right/bottom copy top, missing left copies right.
fn padding(o: &mut ProcessingOptions, args: &[&str]) -> Result<(), UrlError> {
    max_args("padding", args, 4)?;
    let given = |i: usize| args.get(i).copied().filter(|s| !s.is_empty());
    let p = &mut o.padding;
    if let Some(t) = given(0) {
        p.top = non_neg_u32("padding.top", t)?;
    }
    p.right = match given(1) {
        Some(r) => non_neg_u32("padding.right", r)?,
        None => p.top,
    };
    p.bottom = match given(2) {
        Some(b) => non_neg_u32("padding.bottom", b)?,
        None => p.top,
    };
    p.left = match given(3) {
        Some(l) => non_neg_u32("padding.left", l)?,
        None => p.right,
    };
    Ok(())
}

fn background(args: &[&str]) -> Result<Option<Rgb>, UrlError> {
    match args {
        [""] => Ok(None),
        [hex] => Rgb::from_hex(hex)
            .map(Some)
            .ok_or_else(|| UrlError::arg("background", hex, "hex-encoded color")),
        [r, g, b] => Ok(Some(Rgb {
            r: u8_digits("background.R", r)?,
            g: u8_digits("background.G", g)?,
            b: u8_digits("background.B", b)?,
        })),
        _ => Err(UrlError::args("background", args)),
    }
}

fn watermark(o: &mut ProcessingOptions, args: &[&str]) -> Result<(), UrlError> {
    max_args("watermark", args, 7)?;
    let a0 = args.first().copied().unwrap_or("");
    let opacity = plain_f64("watermark.opacity", a0)
        .ok()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| UrlError::arg("watermark.opacity", a0, "number in range 0-1"))?;
    let wm = &mut o.watermark;
    wm.opacity = opacity;
    if let Some(p) = args.get(1).filter(|s| !s.is_empty()) {
        wm.position = GravityKind::from_name(p)
            .filter(|k| k.is_anchor() || *k == GravityKind::Replicate)
            .ok_or_else(|| {
                UrlError::arg(
                    "watermark.position",
                    p,
                    "ce, no, ea, so, we, noea, nowe, soea, sowe, re",
                )
            })?;
    }
    if let Some(x) = args.get(2).filter(|s| !s.is_empty()) {
        wm.x_offset = plain_f64("watermark.x_offset", x)?;
    }
    if let Some(y) = args.get(3).filter(|s| !s.is_empty()) {
        wm.y_offset = plain_f64("watermark.y_offset", y)?;
    }
    if let Some(s) = args.get(4).filter(|s| !s.is_empty()) {
        wm.scale = pos_f64("watermark.scale", s)?;
    }
    Ok(())
}

fn quality(option: &'static str, s: &str) -> Result<u8, UrlError> {
    int_arg(option, s)
        .ok()
        .and_then(|q| u8::try_from(q).ok())
        .filter(|q| *q <= 100)
        .ok_or_else(|| UrlError::arg(option, s, "number in range 0-100"))
}

fn format_quality(o: &mut ProcessingOptions, args: &[&str]) -> Result<(), UrlError> {
    if !args.len().is_multiple_of(2) {
        let last = args.last().copied().unwrap_or("");
        return Err(UrlError::rule(
            "format_quality",
            format!("Missing format_quality for: {last}"),
        ));
    }
    for pair in args.chunks_exact(2) {
        let Some(format) = Format::from_name(pair[0]) else {
            return Err(UrlError::rule(
                "format_quality",
                format!("Invalid image format: {}", pair[0]),
            ));
        };
        o.format_quality
            .insert(format, quality("format_quality", pair[1])?);
    }
    Ok(())
}

pub(crate) fn format_arg(args: &[&str]) -> Result<Format, UrlError> {
    max_args("format", args, 1)?;
    let a0 = args.first().copied().unwrap_or("");
    Format::from_name(a0).ok_or_else(|| UrlError::arg("format", a0, "supported image format"))
}

fn filename(args: &[&str]) -> Result<String, UrlError> {
    max_args("filename", args, 2)?;
    let a0 = args.first().copied().unwrap_or("");
    let encoded = args.get(1).is_some_and(|e| !e.is_empty() && parse_bool(e));
    if !encoded {
        return Ok(a0.to_owned());
    }
    super::path::BASE64_LENIENT
        .decode(a0.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| UrlError::arg("filename", a0, "URL-safe base64-encoded string"))
}
