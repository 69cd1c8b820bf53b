//! Watermark: the image from the route's config drawn over the result
//! (imgproxy's `watermark` option: opacity, position or `re` = tiled,
//! offsets, scale relative to the result).

use super::TransformError;
use super::geometry::{position, scale_to_even};
use super::plan::Plan;
use super::steps::{Ctx, apply_steps, open, vips_err};
use super::vips::{Access, Image, LoadOptions, TileOrigin};
use imgforge_imgproxy::{Gravity, GravityKind, Padding, ProcessingOptions, ResizingType};

/// Draws the watermark on every one of `frames` stacked frames of `img`.
/// `dpr_scale` scales absolute offsets, as for the image itself.
pub(crate) fn apply(
    ctx: &Ctx<'_>,
    img: Image,
    dpr_scale: f64,
    frames: u32,
) -> Result<Image, TransformError> {
    let wm = ctx.options.watermark;
    let Some(bytes) = ctx.watermark.filter(|_| wm.opacity > 0.0) else {
        return Ok(img);
    };
    let frames = frames.max(1);
    let width = img.width();
    let frame_height = img.height() / frames;
    let (probe, loader, _) =
        open(bytes).map_err(|e| TransformError::Internal(format!("watermark image: {e}")))?;
    let mark = Image::load(
        bytes,
        LoadOptions {
            access: Access::Random,
            ..LoadOptions::new(loader)
        },
    )
    .map_err(vips_err)?;
    let mark = if probe.pages > 1 {
        mark.remove_animation().map_err(vips_err)?
    } else {
        mark
    };
    let mark = mark.to_processing().map_err(vips_err)?;

    let replicate = wm.position == GravityKind::Replicate;
    let mut po = ProcessingOptions {
        resizing_type: ResizingType::Fit,
        enlarge: true,
        ..ProcessingOptions::default()
    };
    if wm.scale > 0.0 {
        po.width = scale_to_even(width, wm.scale).max(1);
        po.height = scale_to_even(frame_height, wm.scale).max(1);
    }
    if replicate {
        // Offsets of a tiled watermark are the gaps between tiles.
        let gap = |offset: f64, size: u32| -> u32 {
            if offset.abs() >= 1.0 {
                (offset * dpr_scale).round_ties_even().max(0.0) as u32
            } else {
                scale_to_even(size, offset.max(0.0))
            }
        };
        let (gx, gy) = (gap(wm.x_offset, width), gap(wm.y_offset, frame_height));
        po.padding = Padding {
            top: gy / 2,
            right: gx - gx / 2,
            bottom: gy - gy / 2,
            left: gx / 2,
        };
    }
    let plan = Plan::new(&po, mark.width(), mark.height(), probe.orientation, 0);
    let mut mark = apply_steps(ctx, mark, &plan.steps())?
        .copy_memory()
        .map_err(vips_err)?;
    if replicate {
        mark = mark
            .replicate(width, frame_height, TileOrigin::Centre)
            .map_err(vips_err)?;
    }

    if replicate && frames > 1 {
        // One pass over the whole strip is cheaper than one per frame.
        let tiled = mark
            .replicate(width, img.height(), TileOrigin::TopLeft)
            .map_err(vips_err)?;
        return img.composite(&tiled, 0, 0, wm.opacity).map_err(vips_err);
    }
    let (mw, mh) = (mark.width(), mark.height());
    let (left, mut top) = if replicate {
        (0, 0)
    } else {
        let g = Gravity {
            kind: wm.position,
            x: wm.x_offset,
            y: wm.y_offset,
        };
        position((width, frame_height), (mw, mh), &g, dpr_scale, true)
    };
    if left >= i64::from(width)
        || top >= i64::from(frame_height)
        || -left >= i64::from(mw)
        || -top >= i64::from(mh)
    {
        return Ok(img);
    }
    if frames > 1 {
        // Keep a watermark that sticks out of its frame from bleeding into
        // the next one.
        let cut_top = (-top).max(0) as u32;
        let top_in = top.max(0) as u32;
        let visible = (mh - cut_top).min(frame_height - top_in);
        if cut_top > 0 || visible < mh {
            mark = mark.extract(0, cut_top, mw, visible).map_err(vips_err)?;
        }
        top = i64::from(top_in);
    }
    let mut img = img;
    for i in 0..frames {
        let y = top + i64::from(i) * i64::from(frame_height);
        img = img
            .composite(&mark, left as i32, y as i32, wm.opacity)
            .map_err(vips_err)?;
        ctx.check_time()?;
    }
    Ok(img)
}
