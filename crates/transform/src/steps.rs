//! The pieces every path of a job shares (the still image, the animation frame by frame, the
//! watermark): the job's context, opening a source, the geometric steps of a plan, the encoder
//! limits and flatten, and how a libvips failure becomes a [`TransformError`].
//!
//! `pipeline` (the whole job), `frames` (animations) and `watermark` build on this module; it
//! imports none of them.

use std::time::Instant;

use bytes::Bytes;

use super::geometry::{CropAction, crop_action, encoder_limit_scale, extend_area};
use super::plan::Step;
use super::vips::{Direction, ErrorKind, Image, LoadOptions, Loader, Saver, VipsError};
use super::{EngineSettings, Format, Probe, TransformError};
use imgforge_imgproxy::ProcessingOptions;

pub(crate) const WHITE: [u8; 3] = [255, 255, 255];

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

pub(crate) fn loader_for(format: Format) -> Option<Loader> {
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

pub(crate) fn saver_for(format: Format, settings: &EngineSettings) -> Option<Saver> {
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

pub(crate) fn supports_alpha(format: Format) -> bool {
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
