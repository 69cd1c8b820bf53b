//! A whole job, as one list of named stages (`transform`): header → limits → output format →
//! decode and process (still, or animated frame by frame in `frames`) → AVIF size fallback →
//! colour profile and metadata → encode (`max_bytes` loop). The pieces the stages share with
//! `frames` and `watermark` are in `steps`.
//!
//! Runs on a worker thread only. libvips is lazy: most steps only build a
//! graph, the pixels flow once during the final encode.

use std::time::Instant;

use bytes::Bytes;

use super::geometry::trim_box;
use super::plan::Plan;
use super::steps::{
    Ctx, Processed, WHITE, apply_steps, fit_encoder_and_flatten, open, saver_for, supports_alpha,
    vips_err,
};
use super::vips::{Access, FinishOptions, Image, LoadOptions, Loader};
use super::{Encoded, EngineSettings, Format, Job, Output, OutputChoice, Probe, TransformError};
use imgforge_imgproxy::{ProcessingOptions, Trim};

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
    let format = output_format(settings, output, &probe, frames)?;
    let ctx = Ctx {
        settings,
        options: &options,
        deadline,
        format,
        max_result_dimension: limits.result_dimension,
        watermark: watermark.as_deref(),
    };
    let Processed {
        image,
        pages,
        rotated,
    } = process(&ctx, &source, loader, &probe, header, frames)?;
    ctx.check_time()?;
    let frame_height = image.height() / pages.max(1);
    let format = avif_fallback(format, &image, frame_height);
    let image = finish(&image, &options, pages, rotated)?;
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

/// The output format: the job's, or its rule's once the header is known; refused unless the
/// engine produces it.
fn output_format(
    settings: &EngineSettings,
    output: OutputChoice,
    probe: &Probe,
    frames: u32,
) -> Result<Format, TransformError> {
    let format = match output {
        OutputChoice::Format(f) => f,
        OutputChoice::Decide(rule) => rule(probe, frames > 1),
    };
    if !format.is_output() || !settings.formats.contains(&format) {
        return Err(TransformError::OutputNotEnabled(format.name()));
    }
    Ok(format)
}

/// Decodes and processes the source: frame by frame when it stays animated, else as a still.
fn process(
    ctx: &Ctx<'_>,
    source: &Bytes,
    loader: Loader,
    probe: &Probe,
    header: Image,
    frames: u32,
) -> Result<Processed, TransformError> {
    if frames > 1 && matches!(ctx.format, Format::Gif | Format::Webp) {
        drop(header);
        super::frames::process(ctx, source, loader, frames)
    } else {
        still(ctx, source, loader, probe, header)
    }
}

/// AV1 needs 16 px; imgproxy falls back the same way (PNG with alpha, else JPEG).
fn avif_fallback(format: Format, image: &Image, frame_height: u32) -> Format {
    if format == Format::Avif && (image.width() < 16 || frame_height < 16) {
        if image.has_alpha() {
            Format::Png
        } else {
            Format::Jpeg
        }
    } else {
        format
    }
}

/// Colour profile (to sRGB unless kept) and metadata (stripped unless kept).
fn finish(
    image: &Image,
    options: &ProcessingOptions,
    pages: u32,
    rotated: bool,
) -> Result<Image, TransformError> {
    image
        .finish(FinishOptions {
            strip: options.strip_metadata,
            keep_copyright: options.keep_copyright,
            keep_profile: !options.strip_color_profile,
            animated: pages > 1,
            rotated,
        })
        .map_err(vips_err)
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
