//! Animated sources (GIF, WebP) kept animated: frames are processed one by
//! one with the same plan, joined back into a strip (`page-height`) and the
//! delays and loop count restored.

use bytes::Bytes;

use super::TransformError;
use super::plan::Plan;
use super::steps::{Ctx, Processed, apply_steps, fit_encoder_and_flatten, vips_err};
use super::vips::{Access, Image, LoadOptions, Loader, Pages};
use imgforge_imgproxy::{ProcessingOptions, Trim};

/// Frame delay when the source has none: 25 fps (imgproxy's default).
const DEFAULT_DELAY_MS: i32 = 40;

/// Processes the first `frames` frames of an animation.
pub(crate) fn process(
    ctx: &Ctx<'_>,
    source: &Bytes,
    loader: Loader,
    frames: u32,
) -> Result<Processed, TransformError> {
    // Frames are extracted out of order relative to a sequential decode of
    // the strip: random access. Memory is bounded by the resolution limits.
    let strip = Image::load(
        source,
        LoadOptions {
            pages: Pages::First(frames),
            access: Access::Random,
            ..LoadOptions::new(loader)
        },
    )
    .map_err(vips_err)?;
    let width = strip.width();
    let frame_height = strip.page_height();
    let n = (strip.height() / frame_height).clamp(1, frames);
    let delays = strip.delays();
    let loop_count = strip.loop_count();
    // Trim would give frames different sizes: not for animations (imgproxy).
    let options = ProcessingOptions {
        trim: Trim::default(),
        ..ctx.options.clone()
    };
    let plan = Plan::new(&options, width, frame_height, 1, ctx.max_result_dimension);
    let steps = plan.steps();
    let strip = strip.to_processing().map_err(vips_err)?;
    let mut done = Vec::with_capacity(n as usize);
    for i in 0..n {
        let frame = strip
            .extract(0, i * frame_height, width, frame_height)
            .map_err(vips_err)?;
        let frame = apply_steps(ctx, frame, &steps)?;
        let frame = fit_encoder_and_flatten(ctx, frame)?;
        // Render now: the next frame's graph must not re-decode this one.
        done.push(frame.copy_memory().map_err(vips_err)?);
        ctx.check_time()?;
    }
    let page_height = done.first().map_or(frame_height, Image::height);
    // Smart crop may pick different boxes per frame but always the same size;
    // a frame of another size would break the strip.
    if done
        .iter()
        .any(|f| f.height() != page_height || f.width() != done[0].width())
    {
        return Err(TransformError::Internal(
            "animation frames differ in size".into(),
        ));
    }
    let joined = Image::arrayjoin(&done).map_err(vips_err)?;
    let delays = frame_delays(&delays, n as usize);
    let mut image = joined
        .set_animation(page_height, &delays, loop_count)
        .map_err(vips_err)?;
    if ctx.options.watermark.opacity > 0.0 {
        image = super::watermark::apply(ctx, image, plan.dpr_scale, n)?;
    }
    Ok(Processed {
        image,
        pages: n,
        rotated: false,
    })
}

/// Delays for `n` frames: the source's, truncated, or padded with the
/// default.
fn frame_delays(source: &[i32], n: usize) -> Vec<i32> {
    (0..n)
        .map(|i| {
            source
                .get(i)
                .copied()
                .filter(|d| *d > 0)
                .unwrap_or(DEFAULT_DELAY_MS)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_truncated_or_defaulted() {
        assert_eq!(frame_delays(&[100, 200, 300], 2), vec![100, 200]);
        assert_eq!(frame_delays(&[], 2), vec![40, 40]);
        assert_eq!(frame_delays(&[0, 70], 3), vec![40, 70, 40]);
    }
}
