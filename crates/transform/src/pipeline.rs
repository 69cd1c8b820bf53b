//! Executes a plan with libvips: header → limits → format → decode (with
//! shrink-on-load) → steps → encoder limits, flatten, watermark → colour
//! profile and metadata → encode (`max_bytes` loop).
//!
//! Runs on a worker thread only. libvips is lazy: most steps only build a
//! graph, the pixels flow once during the final encode.

use std::time::Instant;

use bytes::Bytes;

use super::geometry::{CropAction, crop_action, encoder_limit_scale, extend_area, trim_box};
use super::plan::{Plan, Step};
use super::vips::{
    Access, Direction, ErrorKind, FinishOptions, Image, LoadOptions, Loader, Saver, VipsError,
};
use super::{Encoded, EngineSettings, Format, Job, Output, OutputChoice, Probe, TransformError};
use imgforge_imgproxy::{ProcessingOptions, Trim};

const WHITE: [u8; 3] = [255, 255, 255];

/// What a job runs with, shared by the still, animated and watermark paths.
pub(crate) struct Ctx<'a> {
    pub settings: &'a EngineSettings,
    pub options: &'a ProcessingOptions,
    pub deadline: Option<Instant>,
    pub format: Format,
    pub max_result_dimension: u32,
    pub watermark: Option<&'a Bytes>,
}

impl Ctx<'_> {
    /// Gives up between steps once the caller has stopped waiting.
    pub(crate) fn check_time(&self) -> Result<(), TransformError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(TransformError::Timeout),
            _ => Ok(()),
        }
    }
}

/// The processed image before metadata clean-up and encoding.
pub(crate) struct Processed {
    pub image: Image,
    pub pages: u32,
    pub rotated: bool,
}

/// A libvips failure as the engine reports it, by the kind the C side returned for it and never
/// by its message (kept for logs). A decode failure is the data's fault wherever it surfaced:
/// libvips decodes lazily, so a truncated source fails in whichever step first reads its pixels,
/// and the C side records that with the source itself rather than in the message.
pub(crate) fn vips_err(e: VipsError) -> TransformError {
    match e.kind {
        ErrorKind::Decode => TransformError::Undecodable(e.message),
        ErrorKind::Limits => TransformError::TooLarge(e.message),
        ErrorKind::Encode | ErrorKind::Internal => TransformError::Internal(e.message),
    }
}

fn loader_for(format: Format) -> Option<Loader> {
    Some(match format {
        Format::Jpeg => Loader::Jpeg,
        Format::Png => Loader::Png,
        Format::Webp => Loader::Webp,
        Format::Gif => Loader::Gif,
        Format::Avif | Format::Heic => Loader::Heif,
        Format::Tiff => Loader::Tiff,
        _ => return None,
    })
}

fn saver_for(format: Format, settings: &EngineSettings) -> Option<Saver> {
    Some(match format {
        Format::Jpeg => Saver::Jpeg {
            progressive: settings.jpeg_progressive,
        },
        Format::Png => Saver::Png,
        Format::Webp => Saver::Webp,
        Format::Gif => Saver::Gif,
        Format::Avif => Saver::Avif {
            speed: settings.avif_speed,
        },
        _ => return None,
    })
}

fn supports_alpha(format: Format) -> bool {
    matches!(
        format,
        Format::Png | Format::Webp | Format::Avif | Format::Gif
    )
}

/// Sniffs the source and opens its header (sequential, one page).
pub(crate) fn open(source: &Bytes) -> Result<(Probe, Loader, Image), TransformError> {
    super::vips::clear_errors();
    let format = super::sniff(source).ok_or(TransformError::NotAnImage)?;
    let loader = loader_for(format)
        .filter(|_| super::decodable(format))
        .ok_or(TransformError::FormatNotAllowed(format.name()))?;
    let header = Image::load(source, LoadOptions::new(loader)).map_err(vips_err)?;
    let probe = Probe {
        format,
        width: header.width(),
        height: header.page_height(),
        pages: header.n_pages(),
        animated: header.is_animated(),
        alpha: header.has_alpha(),
        orientation: header.orientation(),
        bytes: source.len(),
    };
    if probe.width == 0 || probe.height == 0 {
        return Err(TransformError::Undecodable("empty image".into()));
    }
    Ok((probe, loader, header))
}

/// Header facts of a source (see [`super::Engine::probe`]).
pub(crate) fn probe(source: &Bytes) -> Result<Probe, TransformError> {
    open(source).map(|(probe, _, _)| probe)
}

/// Security limits, URL options over engine settings.
struct Limits {
    resolution: u64,
    frames: u32,
    frame_resolution: u64,
    result_dimension: u32,
}

impl Limits {
    fn new(settings: &EngineSettings, o: &ProcessingOptions) -> Limits {
        Limits {
            resolution: o.max_src_resolution.unwrap_or(settings.max_src_resolution),
            frames: o
                .max_animation_frames
                .unwrap_or(settings.max_animation_frames)
                .max(1),
            frame_resolution: o
                .max_animation_frame_resolution
                .unwrap_or(settings.max_animation_frame_resolution),
            result_dimension: o
                .max_result_dimension
                .map_or(settings.max_result_dimension, |d| {
                    u32::try_from(d.max(0)).unwrap_or(u32::MAX)
                }),
        }
    }

    /// Frames that will be processed: more than one only for animations
    /// with a frame limit above 1 (imgproxy's default of 1 keeps the first).
    fn frames(&self, probe: &Probe) -> u32 {
        if probe.animated && self.frames > 1 {
            probe.pages.min(self.frames)
        } else {
            1
        }
    }

    /// Checked on the header, before any pixel is decoded.
    fn check(&self, probe: &Probe, frames: u32) -> Result<(), TransformError> {
        let area = u64::from(probe.width) * u64::from(probe.height);
        if frames > 1 && self.frame_resolution > 0 {
            if area > self.frame_resolution {
                return Err(TransformError::TooLarge(format!(
                    "frame {}x{} exceeds {} pixels",
                    probe.width, probe.height, self.frame_resolution
                )));
            }
            return Ok(());
        }
        let total = area * u64::from(frames);
        if self.resolution > 0 && total > self.resolution {
            return Err(TransformError::TooLarge(format!(
                "{}x{}x{} frames exceeds {} pixels",
                probe.width, probe.height, frames, self.resolution
            )));
        }
        Ok(())
    }
}

/// The resolution and frame limits for `probe` under `options`.
pub(crate) fn check_limits(
    settings: &EngineSettings,
    probe: &Probe,
    options: &ProcessingOptions,
) -> Result<(), TransformError> {
    let limits = Limits::new(settings, options);
    limits.check(probe, limits.frames(probe))
}

/// Runs a whole job (on a worker thread).
pub(crate) fn transform(
    settings: &EngineSettings,
    job: Job,
    deadline: Option<Instant>,
) -> Result<Output, TransformError> {
    let Job {
        source,
        options,
        output,
        quality,
        watermark,
    } = job;
    let (probe, loader, header) = open(&source)?;
    let limits = Limits::new(settings, &options);
    let frames = limits.frames(&probe);
    limits.check(&probe, frames)?;
    let format = match output {
        OutputChoice::Format(f) => f,
        OutputChoice::Decide(rule) => rule(&probe, frames > 1),
    };
    if !format.is_output() || !settings.formats.contains(&format) {
        return Err(TransformError::OutputNotEnabled(format.name()));
    }
    let ctx = Ctx {
        settings,
        options: &options,
        deadline,
        format,
        max_result_dimension: limits.result_dimension,
        watermark: watermark.as_deref(),
    };
    let animated = frames > 1 && matches!(format, Format::Gif | Format::Webp);
    let processed = if animated {
        drop(header);
        super::frames::process(&ctx, &source, loader, frames)?
    } else {
        still(&ctx, &source, loader, &probe, header)?
    };
    ctx.check_time()?;
    let Processed {
        image,
        pages,
        rotated,
    } = processed;
    let frame_height = image.height() / pages.max(1);
    // AV1 needs 16 px; imgproxy falls back the same way.
    let format = if format == Format::Avif && (image.width() < 16 || frame_height < 16) {
        if image.has_alpha() {
            Format::Png
        } else {
            Format::Jpeg
        }
    } else {
        format
    };
    let image = image
        .finish(FinishOptions {
            strip: options.strip_metadata,
            keep_copyright: options.keep_copyright,
            keep_profile: !options.strip_color_profile,
            animated: pages > 1,
            rotated,
        })
        .map_err(vips_err)?;
    let q = options.quality_for(format, &quality.per_format, quality.default);
    let bytes = crate::spans::encode(format.name())
        .in_scope(|| encode(&ctx, &image, format, q, options.max_bytes))?;
    Ok(Output {
        bytes: Encoded::from(bytes),
        format,
        width: image.width(),
        height: frame_height,
        pages,
        source: probe,
    })
}

/// The largest JPEG, in decoded pixels, that is decoded into memory at once at scale 1 or 1/2
/// (15 MB as RGB): the cost of holding it against libvips streaming it.
const DIRECT_JPEG_PIXELS: u64 = 5_000_000;

/// Pixels of `probe` decoded at 1/`shrink` (libjpeg rounds scaled sizes up).
fn decoded_pixels(probe: &Probe, shrink: i32) -> u64 {
    let s = u64::from(shrink.max(1).unsigned_abs());
    u64::from(probe.width).div_ceil(s) * u64::from(probe.height).div_ceil(s)
}

/// JPEG shrink-on-load takes 1, 2, 4 or 8 (DCT scaling).
fn jpeg_shrink(preshrink: f64) -> i32 {
    match preshrink {
        s if s >= 8.0 => 8,
        s if s >= 4.0 => 4,
        s if s >= 2.0 => 2,
        _ => 1,
    }
}

fn still(
    ctx: &Ctx<'_>,
    source: &Bytes,
    loader: Loader,
    probe: &Probe,
    header: Image,
) -> Result<Processed, TransformError> {
    let o = ctx.options;
    let mrd = ctx.max_result_dimension;
    let mut plan = Plan::new(o, probe.width, probe.height, probe.orientation, mrd);
    let mut img = if let Some(threshold) = o.trim.threshold {
        drop(header);
        // Trim needs the whole image twice (find, then cut): random access,
        // and no shrink-on-load (imgproxy: trim disables scale-on-load).
        let full = Image::load(
            source,
            LoadOptions {
                access: Access::Random,
                ..LoadOptions::new(loader)
            },
        )
        .map_err(vips_err)?;
        let full = single_page(full, probe)?
            .to_processing()
            .map_err(vips_err)?;
        let trimmed = trim(full, threshold, &o.trim)?;
        plan = Plan::new(o, trimmed.width(), trimmed.height(), probe.orientation, mrd);
        trimmed
    } else {
        let pre = plan.preshrink();
        let (shrink, scale) = match loader {
            Loader::Jpeg => (jpeg_shrink(pre), 1.0),
            Loader::Webp if pre > 1.0 => (1, 1.0 / pre),
            _ => (1, 1.0),
        };
        // A JPEG is decoded by libjpeg directly (10-15 % less CPU than libvips's loader;
        // docs/performance.md) when scaled by 1/4 or 1/8, or when its scaled image is small: the
        // whole image is held at once, where libvips would stream a large one in strips.
        // CMYK/YCCK sources fall back to libvips.
        let direct = match loader {
            Loader::Jpeg if shrink >= 4 || decoded_pixels(probe, shrink) <= DIRECT_JPEG_PIXELS => {
                Image::decode_jpeg(source, shrink, &header).map_err(vips_err)?
            }
            _ => None,
        };
        let img = if let Some(img) = direct {
            drop(header);
            if shrink > 1 {
                plan.apply_preshrink(img.width(), img.height());
            }
            img
        } else if shrink > 1 || scale < 1.0 {
            drop(header);
            let img = Image::load(
                source,
                LoadOptions {
                    shrink,
                    scale,
                    ..LoadOptions::new(loader)
                },
            )
            .map_err(vips_err)?;
            plan.apply_preshrink(img.width(), img.height());
            img
        } else {
            header
        };
        single_page(img, probe)?.to_processing().map_err(vips_err)?
    };
    ctx.check_time()?;
    img = apply_steps(ctx, img, &plan.steps())?;
    img = fit_encoder_and_flatten(ctx, img)?;
    if ctx.options.watermark.opacity > 0.0 {
        img = super::watermark::apply(ctx, img, plan.dpr_scale, 1)?;
    }
    Ok(Processed {
        image: img,
        pages: 1,
        rotated: plan.angle != 0 || plan.flip,
    })
}

fn single_page(img: Image, probe: &Probe) -> Result<Image, TransformError> {
    if probe.pages > 1 {
        img.remove_animation().map_err(vips_err)
    } else {
        Ok(img)
    }
}

fn trim(full: Image, threshold: f64, t: &Trim) -> Result<Image, TransformError> {
    let color = t.color.map(|c| [c.r, c.g, c.b]);
    let found = full.find_trim(threshold, color).map_err(vips_err)?;
    let size = (full.width(), full.height());
    match trim_box(size, found, t.equal_hor, t.equal_ver) {
        Some((l, t, w, h)) if (w, h) != size => full
            .extract(l, t, w, h)
            .and_then(|i| i.copy_memory())
            .map_err(vips_err),
        _ => Ok(full),
    }
}

/// Executes geometric steps, resolving crop and extend on actual sizes.
pub(crate) fn apply_steps(
    ctx: &Ctx<'_>,
    mut img: Image,
    steps: &[Step],
) -> Result<Image, TransformError> {
    let mut in_memory = false;
    for step in steps {
        let size = (img.width(), img.height());
        img = match step {
            Step::Crop {
                width,
                height,
                gravity,
                offset_scale,
            } => match crop_action(size, *width, *height, gravity, *offset_scale) {
                CropAction::Keep => Ok(img),
                // Smart crop scans the image several times: render it once.
                CropAction::Smart(w, h) => img.copy_memory().and_then(|i| i.smartcrop(w, h)),
                CropAction::Area(l, t, w, h) => img.extract(l, t, w, h),
            }
            .map_err(vips_err)?,
            Step::Resize { hscale, vscale } => img.resize(*hscale, *vscale).map_err(vips_err)?,
            Step::Rotate(angle) => {
                // Rotation reads columns: needs random access.
                if !in_memory {
                    img = img.copy_memory().map_err(vips_err)?;
                    in_memory = true;
                }
                img.rotate(*angle).map_err(vips_err)?
            }
            Step::Flip {
                horizontal,
                vertical,
            } => {
                if !in_memory {
                    img = img.copy_memory().map_err(vips_err)?;
                    in_memory = true;
                }
                if *horizontal {
                    img = img.flip(Direction::Horizontal).map_err(vips_err)?;
                }
                if *vertical {
                    img = img.flip(Direction::Vertical).map_err(vips_err)?;
                }
                img
            }
            Step::Filters {
                blur,
                sharpen,
                pixelate,
            } => img
                .copy_memory()
                .and_then(|i| i.filters(*blur, *sharpen, *pixelate))
                .and_then(|i| i.copy_memory())
                .map_err(vips_err)?,
            Step::Extend {
                width,
                height,
                gravity,
                offset_scale,
            } => match extend_area(size, *width, *height, gravity, *offset_scale) {
                Some((x, y, w, h)) => img.embed(x, y, w, h).map_err(vips_err)?,
                None => img,
            },
            Step::Pad {
                top,
                right,
                bottom,
                left,
            } => img
                .embed(*left, *top, size.0 + left + right, size.1 + top + bottom)
                .map_err(vips_err)?,
        };
        ctx.check_time()?;
    }
    Ok(img)
}

/// Encoder size limits, then flatten onto the background when asked or
/// when the output has no alpha (JPEG; imgproxy's default background is
/// white).
pub(crate) fn fit_encoder_and_flatten(
    ctx: &Ctx<'_>,
    mut img: Image,
) -> Result<Image, TransformError> {
    if let Some(s) = encoder_limit_scale(ctx.format, img.width(), img.height()) {
        img = img.resize(s, s).map_err(vips_err)?;
    }
    let bg = ctx.options.background;
    if img.has_alpha() && (bg.is_some() || !supports_alpha(ctx.format)) {
        let rgb = bg.map_or(WHITE, |c| [c.r, c.g, c.b]);
        img = img.flatten(rgb).map_err(vips_err)?;
    }
    Ok(img)
}

/// Encodes; with `max_bytes`, lowers the quality until the result fits
/// (JPEG, WebP, AVIF; best effort down to quality 10, as imgproxy).
fn encode(
    ctx: &Ctx<'_>,
    img: &Image,
    format: Format,
    quality: u8,
    max_bytes: u64,
) -> Result<Bytes, TransformError> {
    let saver =
        saver_for(format, ctx.settings).ok_or(TransformError::OutputNotEnabled(format.name()))?;
    let lossy = matches!(format, Format::Jpeg | Format::Webp | Format::Avif);
    if max_bytes == 0 || !lossy {
        return img.save(saver, quality).map_err(vips_err);
    }
    // Several encodes of the same pixels: render them once.
    let img = img.copy_memory().map_err(vips_err)?;
    let mut q = quality.max(1);
    loop {
        ctx.check_time()?;
        let bytes = img.save(saver, q).map_err(vips_err)?;
        let size = bytes.len() as u64;
        if size <= max_bytes || q <= 10 {
            return Ok(bytes);
        }
        let delta = size as f64 / max_bytes as f64;
        let factor = if delta > 3.0 {
            0.25
        } else if delta > 1.5 {
            0.5
        } else {
            0.75
        };
        let next = (f64::from(q) * factor).round() as u8;
        q = next.min(q - 1).max(1);
    }
}

/// Encodes a 32×32 RGBA gradient (the start-up self-test).
pub(crate) fn self_test_encode(
    settings: &EngineSettings,
    format: Format,
) -> Result<Bytes, TransformError> {
    let mut px = Vec::with_capacity(32 * 32 * 4);
    for y in 0..32u8 {
        for x in 0..32u8 {
            px.extend_from_slice(&[x * 8, y * 8, 128, 255 - x * 4]);
        }
    }
    let saver =
        saver_for(format, settings).ok_or(TransformError::OutputNotEnabled(format.name()))?;
    let mut img = Image::from_pixels(&px, 32, 32, 4).map_err(vips_err)?;
    if !supports_alpha(format) {
        img = img.flatten(WHITE).map_err(vips_err)?;
    }
    img.save(saver, 80)
        .map_err(|e| TransformError::Internal(e.message))
}

/// Decodes a source fully (JPEG shrink-on-load `shrink`) and returns its
/// size: the decode stage alone, for benchmarks. Not for the event loop.
pub(crate) fn decode_for_bench(source: &Bytes, shrink: u8) -> Result<(u32, u32), TransformError> {
    let (_, loader, header) = open(source)?;
    let img = if shrink > 1 {
        Image::load(
            source,
            LoadOptions {
                shrink: i32::from(shrink),
                scale: 1.0 / f64::from(shrink),
                ..LoadOptions::new(loader)
            },
        )
        .map_err(vips_err)?
    } else {
        header
    };
    let img = img.copy_memory().map_err(vips_err)?;
    Ok((img.width(), img.height()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(width: u32, height: u32) -> Probe {
        Probe {
            format: Format::Jpeg,
            width,
            height,
            pages: 1,
            animated: false,
            alpha: false,
            orientation: 1,
            bytes: 0,
        }
    }

    #[test]
    fn decoded_pixels_round_up_like_libjpeg() {
        assert_eq!(decoded_pixels(&probe(1920, 1200), 1), 2_304_000);
        assert_eq!(decoded_pixels(&probe(1921, 1201), 2), 961 * 601);
        assert_eq!(decoded_pixels(&probe(6028, 3391), 8), 754 * 424);
        // a 20 MP photo at 1/2 is over the budget: libvips streams it
        assert!(decoded_pixels(&probe(6028, 3391), 2) > DIRECT_JPEG_PIXELS);
        assert!(decoded_pixels(&probe(2560, 1600), 1) <= DIRECT_JPEG_PIXELS);
    }
}
