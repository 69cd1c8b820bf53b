//! Geometry: from options and source dimensions to a list of steps.
//!
//! Pure (no libvips), so that every resize/crop/extend rule is unit-tested
//! on numbers. It follows imgproxy's `processing/prepare.go` and friends:
//! the scale is computed once from the oriented source size, crop happens
//! before scaling (cheaper), EXIF and user rotation after scaling, then the
//! crop to the result box, filters, extend, padding.
//!
//! Steps whose outcome depends on the image's actual size (crop, extend) are
//! resolved at execution time by `geometry::crop_action` and
//! `geometry::extend_area`, which are pure too; the tests run plans on
//! numbers only.

use super::geometry::{
    crop_size, min_non_zero, orientation_transform, rotate_flip_gravity, scale, scale_to_even,
    shrink,
};
use imgforge_imgproxy::{Gravity, GravityKind, ProcessingOptions, ResizingType};

/// One geometric step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Crop to width × height (0 = full) by gravity; see [`crop_action`].
    Crop {
        width: u32,
        height: u32,
        gravity: Gravity,
        offset_scale: f64,
    },
    /// Resample by these factors.
    Resize { hscale: f64, vscale: f64 },
    /// Rotate clockwise by 90, 180 or 270.
    Rotate(u16),
    /// Mirror.
    Flip { horizontal: bool, vertical: bool },
    /// Blur, sharpen, pixelate.
    Filters {
        blur: f64,
        sharpen: f64,
        pixelate: u32,
    },
    /// Grow the canvas to width × height (0 = keep); see [`extend_area`].
    Extend {
        width: u32,
        height: u32,
        gravity: Gravity,
        offset_scale: f64,
    },
    /// Add transparent (or background) borders.
    Pad {
        top: u32,
        right: u32,
        bottom: u32,
        left: u32,
    },
}

/// The geometry of one request on one source (imgproxy's pipeline context).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Source size after EXIF and user rotation.
    pub src_width: u32,
    pub src_height: u32,
    /// EXIF rotation and flip to apply (0/false without `auto_rotate`).
    pub angle: u16,
    pub flip: bool,
    /// User rotation and flips.
    pub rotate: u16,
    pub flip_x: bool,
    pub flip_y: bool,
    /// `crop` in source pixels (oriented), 0 = none.
    pub crop_width: u32,
    pub crop_height: u32,
    pub crop_gravity: Gravity,
    /// Scale factors (oriented axes).
    pub wscale: f64,
    pub hscale: f64,
    /// Effective DPR: scales offsets, padding, watermark.
    pub dpr_scale: f64,
    pub target_width: u32,
    pub target_height: u32,
    pub result_crop_width: u32,
    pub result_crop_height: u32,
    pub exar_width: u32,
    pub exar_height: u32,
    opts: PlanOptions,
}

/// The options a plan needs, copied so that a plan is self-contained.
#[derive(Debug, Clone, PartialEq)]
struct PlanOptions {
    width: u32,
    height: u32,
    resizing_type: ResizingType,
    min_width: u32,
    min_height: u32,
    zoom_x: f64,
    zoom_y: f64,
    dpr: f64,
    enlarge: bool,
    extend: Option<Gravity>,
    exar: Option<Gravity>,
    gravity: Gravity,
    padding: [u32; 4],
    blur: f64,
    sharpen: f64,
    pixelate: u32,
    crop: (f64, f64),
    max_result_dimension: u32,
}

impl Plan {
    /// Plans `options` for a source of `width` × `height` (as stored, before
    /// EXIF rotation) with EXIF `orientation`. `max_result_dimension` 0 = off.
    pub(crate) fn new(
        options: &ProcessingOptions,
        width: u32,
        height: u32,
        orientation: u8,
        max_result_dimension: u32,
    ) -> Plan {
        let (angle, flip) = if options.auto_rotate {
            orientation_transform(orientation)
        } else {
            (0, false)
        };
        let o = PlanOptions {
            width: options.width,
            height: options.height,
            resizing_type: options.resizing_type,
            min_width: options.min_width,
            min_height: options.min_height,
            zoom_x: positive_or_one(options.zoom_x),
            zoom_y: positive_or_one(options.zoom_y),
            dpr: positive_or_one(options.dpr),
            enlarge: options.enlarge,
            extend: options.extend.enabled.then_some(options.extend.gravity),
            exar: options
                .extend_aspect_ratio
                .enabled
                .then_some(options.extend_aspect_ratio.gravity),
            gravity: options.gravity,
            padding: [
                options.padding.top,
                options.padding.right,
                options.padding.bottom,
                options.padding.left,
            ],
            blur: options.blur,
            sharpen: options.sharpen,
            pixelate: options.pixelate,
            crop: (options.crop.width, options.crop.height),
            max_result_dimension,
        };
        let mut plan = Plan {
            src_width: 0,
            src_height: 0,
            angle,
            flip,
            rotate: options.rotate % 360,
            flip_x: options.flip_horizontal,
            flip_y: options.flip_vertical,
            crop_width: 0,
            crop_height: 0,
            crop_gravity: options.crop.gravity.unwrap_or(options.gravity),
            wscale: 1.0,
            hscale: 1.0,
            dpr_scale: 1.0,
            target_width: 0,
            target_height: 0,
            result_crop_width: 0,
            result_crop_height: 0,
            exar_width: 0,
            exar_height: 0,
            opts: o,
        };
        plan.compute(width, height);
        plan
    }

    /// Whether the image's axes are swapped by the rotations.
    pub(crate) fn swaps_axes(&self) -> bool {
        (self.angle + self.rotate) % 180 == 90
    }

    fn compute(&mut self, width: u32, height: u32) {
        let (w, h) = if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        };
        self.src_width = w.max(1);
        self.src_height = h.max(1);
        self.crop_width = crop_size(self.src_width, self.opts.crop.0);
        self.crop_height = crop_size(self.src_height, self.opts.crop.1);
        let ws = min_non_zero(self.crop_width, self.src_width);
        let hs = min_non_zero(self.crop_height, self.src_height);
        self.calc_scale(ws, hs);
        self.calc_sizes(ws, hs);
        self.limit_scale(ws, hs);
    }

    fn calc_scale(&mut self, width: u32, height: u32) {
        let o = &self.opts;
        let (src_w, src_h) = (f64::from(width), f64::from(height));
        let dst_w = if o.width > 0 {
            f64::from(o.width)
        } else {
            src_w
        };
        let dst_h = if o.height > 0 {
            f64::from(o.height)
        } else {
            src_h
        };
        let mut wshrink = if dst_w != src_w { src_w / dst_w } else { 1.0 };
        let mut hshrink = if dst_h != src_h { src_h / dst_h } else { 1.0 };
        if wshrink != 1.0 || hshrink != 1.0 {
            let rt = match o.resizing_type {
                ResizingType::Auto => {
                    let same = (src_w >= src_h) == (dst_w >= dst_h);
                    if same {
                        ResizingType::Fill
                    } else {
                        ResizingType::Fit
                    }
                }
                rt => rt,
            };
            if o.width == 0 && rt != ResizingType::Force {
                wshrink = hshrink;
            } else if o.height == 0 && rt != ResizingType::Force {
                hshrink = wshrink;
            } else if rt == ResizingType::Fit {
                wshrink = wshrink.max(hshrink);
                hshrink = wshrink;
            } else if matches!(rt, ResizingType::Fill | ResizingType::FillDown) {
                wshrink = wshrink.min(hshrink);
                hshrink = wshrink;
            }
        }
        wshrink /= o.zoom_x;
        hshrink /= o.zoom_y;
        let mut dpr = o.dpr;
        if !o.enlarge {
            let min_shrink = wshrink.min(hshrink);
            if min_shrink < 1.0 {
                wshrink /= min_shrink;
                hshrink /= min_shrink;
                // Keep the composition of an extended image independent of DPR.
                if o.extend.is_none() {
                    dpr /= min_shrink;
                }
            }
            dpr = dpr.min(wshrink.min(hshrink));
        }
        if o.min_width > 0 {
            let min_shrink = src_w / f64::from(o.min_width);
            if min_shrink < wshrink {
                hshrink /= wshrink / min_shrink;
                wshrink = min_shrink;
            }
        }
        if o.min_height > 0 {
            let min_shrink = src_h / f64::from(o.min_height);
            if min_shrink < hshrink {
                wshrink /= hshrink / min_shrink;
                hshrink = min_shrink;
            }
        }
        wshrink /= dpr;
        hshrink /= dpr;
        wshrink = wshrink.min(src_w);
        hshrink = hshrink.min(src_h);
        self.dpr_scale = dpr;
        self.wscale = 1.0 / wshrink;
        self.hscale = 1.0 / hshrink;
    }

    fn calc_sizes(&mut self, width: u32, height: u32) {
        let o = &self.opts;
        self.target_width = scale(o.width, self.dpr_scale * o.zoom_x);
        self.target_height = scale(o.height, self.dpr_scale * o.zoom_y);
        let scaled_w = scale(width, self.wscale);
        let scaled_h = scale(height, self.hscale);
        let (tw, th) = (self.target_width, self.target_height);
        (self.result_crop_width, self.result_crop_height) =
            if o.resizing_type == ResizingType::FillDown && !o.enlarge {
                let diff_w = f64::from(tw) / f64::from(scaled_w.max(1));
                let diff_h = f64::from(th) / f64::from(scaled_h.max(1));
                if diff_w > diff_h && diff_w > 1.0 {
                    (
                        scaled_w,
                        scale(scaled_w, f64::from(th) / f64::from(tw.max(1))),
                    )
                } else if diff_h > diff_w && diff_h > 1.0 {
                    (
                        scale(scaled_h, f64::from(tw) / f64::from(th.max(1))),
                        scaled_h,
                    )
                } else {
                    (tw, th)
                }
            } else {
                (tw, th)
            };
        self.exar_width = 0;
        self.exar_height = 0;
        if o.exar.is_some() && tw > 0 && th > 0 {
            let out_w = min_non_zero(scaled_w, self.result_crop_width);
            let out_h = min_non_zero(scaled_h, self.result_crop_height);
            let diff_w = f64::from(tw) / f64::from(out_w.max(1));
            let diff_h = f64::from(th) / f64::from(out_h.max(1));
            if diff_h > diff_w {
                self.exar_height = scale(out_w, f64::from(th) / f64::from(tw));
                self.exar_width = out_w;
            } else if diff_w > diff_h {
                self.exar_width = scale(out_h, f64::from(tw) / f64::from(th));
                self.exar_height = out_h;
            }
        }
    }

    fn padding_px(&self) -> [u32; 4] {
        self.opts.padding.map(|p| scale_to_even(p, self.dpr_scale))
    }

    fn limit_scale(&mut self, width: u32, height: u32) {
        let max_dim = self.opts.max_result_dimension;
        if max_dim == 0 {
            return;
        }
        let scaled_w = scale(width, self.wscale);
        let scaled_h = scale(height, self.hscale);
        let mut out_w = min_non_zero(scaled_w, self.result_crop_width);
        let mut out_h = min_non_zero(scaled_h, self.result_crop_height);
        if self.opts.extend.is_some() {
            out_w = out_w.max(self.target_width);
            out_h = out_h.max(self.target_height);
        } else if self.opts.exar.is_some() {
            out_w = out_w.max(self.exar_width);
            out_h = out_h.max(self.exar_height);
        }
        let [top, right, bottom, left] = self.padding_px();
        out_w += left + right;
        out_h += top + bottom;
        if out_w > max_dim || out_h > max_dim {
            let down = f64::from(max_dim) / f64::from(out_w.max(out_h));
            self.wscale = (self.wscale * down).max(1.0 / f64::from(width.max(1)));
            self.hscale = (self.hscale * down).max(1.0 / f64::from(height.max(1)));
            self.dpr_scale *= down;
            self.calc_sizes(width, height);
        }
    }

    /// The shrink-on-load factor this plan allows (≥ 1; 1 = none).
    pub(crate) fn preshrink(&self) -> f64 {
        let w = f64::from(self.src_width) / f64::from(scale(self.src_width, self.wscale).max(1));
        let h = f64::from(self.src_height) / f64::from(scale(self.src_height, self.hscale).max(1));
        w.min(h).max(1.0)
    }

    /// Updates the plan after the decoder shrank the source to `width` ×
    /// `height` (as stored): the remaining scale and the crop shrink too.
    pub(crate) fn apply_preshrink(&mut self, width: u32, height: u32) {
        let (w, h) = if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        };
        let (w, h) = (w.max(1), h.max(1));
        let wpre = f64::from(self.src_width) / f64::from(w);
        let hpre = f64::from(self.src_height) / f64::from(h);
        self.wscale *= wpre;
        self.hscale *= hpre;
        // An exact preshrink leaves nothing to resample.
        if w == scale(w, self.wscale) {
            self.wscale = 1.0;
        }
        if h == scale(h, self.hscale) {
            self.hscale = 1.0;
        }
        if self.crop_width > 0 {
            self.crop_width = shrink(self.crop_width, wpre).max(1);
        }
        if self.crop_height > 0 {
            self.crop_height = shrink(self.crop_height, hpre).max(1);
        }
        if self.crop_gravity.kind != GravityKind::FocusPoint {
            if self.crop_gravity.x.abs() >= 1.0 {
                self.crop_gravity.x = (self.crop_gravity.x / wpre).round_ties_even();
            }
            if self.crop_gravity.y.abs() >= 1.0 {
                self.crop_gravity.y = (self.crop_gravity.y / hpre).round_ties_even();
            }
        }
    }

    /// The steps, in order, for one frame.
    pub(crate) fn steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        // Crop before rotation: rewrite the gravity and swap the box so the
        // result is what cropping the rotated image would give.
        let mut g = self.crop_gravity;
        rotate_flip_gravity(&mut g, self.rotate, self.flip_x, self.flip_y);
        rotate_flip_gravity(&mut g, self.angle, self.flip, false);
        let (cw, ch) = if self.swaps_axes() {
            (self.crop_height, self.crop_width)
        } else {
            (self.crop_width, self.crop_height)
        };
        if cw > 0 || ch > 0 {
            steps.push(Step::Crop {
                width: cw,
                height: ch,
                gravity: g,
                offset_scale: 1.0,
            });
        }
        if self.wscale != 1.0 || self.hscale != 1.0 {
            let (hscale, vscale) = if self.swaps_axes() {
                (self.hscale, self.wscale)
            } else {
                (self.wscale, self.hscale)
            };
            steps.push(Step::Resize { hscale, vscale });
        }
        if self.angle != 0 {
            steps.push(Step::Rotate(self.angle));
        }
        if self.flip {
            steps.push(Step::Flip {
                horizontal: true,
                vertical: false,
            });
        }
        if self.rotate != 0 {
            steps.push(Step::Rotate(self.rotate));
        }
        if self.flip_x || self.flip_y {
            steps.push(Step::Flip {
                horizontal: self.flip_x,
                vertical: self.flip_y,
            });
        }
        if self.result_crop_width > 0 || self.result_crop_height > 0 {
            steps.push(Step::Crop {
                width: self.result_crop_width,
                height: self.result_crop_height,
                gravity: self.opts.gravity,
                offset_scale: self.dpr_scale,
            });
        }
        let o = &self.opts;
        if o.blur > 0.0 || o.sharpen > 0.0 || o.pixelate > 1 {
            steps.push(Step::Filters {
                blur: o.blur,
                sharpen: o.sharpen,
                pixelate: o.pixelate,
            });
        }
        if let Some(gravity) = o.extend {
            steps.push(Step::Extend {
                width: self.target_width,
                height: self.target_height,
                gravity,
                offset_scale: self.dpr_scale,
            });
        }
        if let Some(gravity) = o.exar
            && self.exar_width > 0
            && self.exar_height > 0
        {
            steps.push(Step::Extend {
                width: self.exar_width,
                height: self.exar_height,
                gravity,
                offset_scale: self.dpr_scale,
            });
        }
        let [top, right, bottom, left] = self.padding_px();
        if top + right + bottom + left > 0 {
            steps.push(Step::Pad {
                top,
                right,
                bottom,
                left,
            });
        }
        steps
    }
}

fn positive_or_one(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 1.0 }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
