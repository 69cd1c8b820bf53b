//! Pure geometry helpers shared by the plan and the pipeline: rounding as
//! imgproxy rounds, gravity placement, gravity under rotation, and the
//! size-dependent resolution of crop, extend, trim and encoder limits.

use imgforge_imgproxy::{Format, Gravity, GravityKind};

/// `round(a * s)`, 0 stays 0 (imgproxy's `imath.Scale`).
pub(crate) fn scale(a: u32, s: f64) -> u32 {
    if a == 0 {
        0
    } else {
        (f64::from(a) * s).round().max(0.0) as u32
    }
}

/// Like [`scale`] with ties to even (`imath.ScaleToEven`).
pub(crate) fn scale_to_even(a: u32, s: f64) -> u32 {
    if a == 0 {
        0
    } else {
        (f64::from(a) * s).round_ties_even().max(0.0) as u32
    }
}

pub(crate) fn shrink(a: u32, s: f64) -> u32 {
    if a == 0 {
        0
    } else {
        (f64::from(a) / s).round().max(0.0) as u32
    }
}

pub(crate) fn min_non_zero(a: u32, b: u32) -> u32 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

/// A crop dimension: ≥ 1 absolute, < 1 relative to `orig`, 0 = none.
pub(crate) fn crop_size(orig: u32, crop: f64) -> u32 {
    if crop <= 0.0 {
        0
    } else if crop >= 1.0 {
        crop.min(f64::from(u32::MAX)) as u32
    } else {
        scale(orig, crop).max(1)
    }
}

/// EXIF orientation → (clockwise angle, horizontal flip before rotation).
pub(crate) fn orientation_transform(orientation: u8) -> (u16, bool) {
    let angle = match orientation {
        3 | 4 => 180,
        5 | 6 => 90,
        7 | 8 => 270,
        _ => 0,
    };
    (angle, matches!(orientation, 2 | 4 | 5 | 7))
}

/// Top-left of an `inner` box placed in an `outer` box by `gravity`.
/// Offsets ≥ 1 are pixels (times `dpr`), smaller ones a fraction of the outer
/// size; east/south offsets push inwards. Clamped inside unless
/// `allow_overflow` (then the box keeps at least one pixel inside).
pub(crate) fn position(
    outer: (u32, u32),
    inner: (u32, u32),
    gravity: &Gravity,
    dpr: f64,
    allow_overflow: bool,
) -> (i64, i64) {
    let (w, h) = (i64::from(outer.0), i64::from(outer.1));
    let (iw, ih) = (i64::from(inner.0), i64::from(inner.1));
    let (mut left, mut top);
    if gravity.kind == GravityKind::FocusPoint {
        left = i64::from(scale_to_even(outer.0, gravity.x)) - iw / 2;
        top = i64::from(scale_to_even(outer.1, gravity.y)) - ih / 2;
    } else {
        let off = |v: f64, size: u32| -> i64 {
            if v.abs() >= 1.0 {
                (v * dpr).round_ties_even() as i64
            } else {
                (f64::from(size) * v).round_ties_even() as i64
            }
        };
        let (ox, oy) = (off(gravity.x, outer.0), off(gravity.y, outer.1));
        left = ((w - iw + 1) as f64 / 2.0).round_ties_even() as i64 + ox;
        top = ((h - ih + 1) as f64 / 2.0).round_ties_even() as i64 + oy;
        use GravityKind::*;
        if matches!(gravity.kind, North | NorthEast | NorthWest) {
            top = oy;
        }
        if matches!(gravity.kind, East | NorthEast | SouthEast) {
            left = w - iw - ox;
        }
        if matches!(gravity.kind, South | SouthEast | SouthWest) {
            top = h - ih - oy;
        }
        if matches!(gravity.kind, West | NorthWest | SouthWest) {
            left = ox;
        }
    }
    let (min_x, max_x, min_y, max_y) = if allow_overflow {
        (-iw + 1, w - 1, -ih + 1, h - 1)
    } else {
        (0, w - iw, 0, h - ih)
    };
    (left.min(max_x).max(min_x), top.min(max_y).max(min_y))
}

/// Rewrites `g` so that cropping before rotation/flip selects what `g`
/// would select after them (imgproxy's `GravityOptions.RotateAndFlip`).
pub(crate) fn rotate_flip_gravity(g: &mut Gravity, angle: u16, flip_x: bool, flip_y: bool) {
    use GravityKind::*;
    if flip_x {
        g.kind = match g.kind {
            East => West,
            West => East,
            NorthWest => NorthEast,
            NorthEast => NorthWest,
            SouthWest => SouthEast,
            SouthEast => SouthWest,
            k => k,
        };
        match g.kind {
            Center | North | South => g.x = -g.x,
            FocusPoint => g.x = 1.0 - g.x,
            _ => {}
        }
    }
    if flip_y {
        g.kind = match g.kind {
            North => South,
            South => North,
            NorthWest => SouthWest,
            NorthEast => SouthEast,
            SouthWest => NorthWest,
            SouthEast => NorthEast,
            k => k,
        };
        match g.kind {
            Center | East | West => g.y = -g.y,
            FocusPoint => g.y = 1.0 - g.y,
            _ => {}
        }
    }
    let rotated = |k: GravityKind, map: [GravityKind; 8]| -> GravityKind {
        const FROM: [GravityKind; 8] = [
            North, East, South, West, NorthWest, NorthEast, SouthWest, SouthEast,
        ];
        FROM.iter().position(|f| *f == k).map_or(k, |i| map[i])
    };
    let (x, y) = (g.x, g.y);
    match angle % 360 {
        90 => {
            g.kind = rotated(
                g.kind,
                [
                    West, North, East, South, SouthWest, NorthWest, SouthEast, NorthEast,
                ],
            );
            (g.x, g.y) = match g.kind {
                Center | East | West => (y, -x),
                FocusPoint => (y, 1.0 - x),
                _ => (y, x),
            };
        }
        180 => {
            g.kind = rotated(
                g.kind,
                [
                    South, West, North, East, SouthEast, SouthWest, NorthEast, NorthWest,
                ],
            );
            match g.kind {
                Center => (g.x, g.y) = (-x, -y),
                North | South => g.x = -x,
                East | West => g.y = -y,
                FocusPoint => (g.x, g.y) = (1.0 - x, 1.0 - y),
                _ => {}
            }
        }
        270 => {
            g.kind = rotated(
                g.kind,
                [
                    East, South, West, North, NorthEast, SouthEast, NorthWest, SouthWest,
                ],
            );
            (g.x, g.y) = match g.kind {
                Center | North | South => (-y, x),
                FocusPoint => (1.0 - y, x),
                _ => (y, x),
            };
        }
        _ => {}
    }
}

/// What a `Step::Crop` does to an image of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CropAction {
    /// Nothing to crop.
    Keep,
    /// libvips smart crop (attention) to this size.
    Smart(u32, u32),
    /// Extract this area: left, top, width, height.
    Area(u32, u32, u32, u32),
}

/// Resolves a crop against the image's actual size (imgproxy's `cropImage`).
pub(crate) fn crop_action(
    image: (u32, u32),
    width: u32,
    height: u32,
    gravity: &Gravity,
    offset_scale: f64,
) -> CropAction {
    if width == 0 && height == 0 {
        return CropAction::Keep;
    }
    let w = min_non_zero(width, image.0);
    let h = min_non_zero(height, image.1);
    if w >= image.0 && h >= image.1 {
        return CropAction::Keep;
    }
    if gravity.kind == GravityKind::Smart {
        return CropAction::Smart(w, h);
    }
    let (l, t) = position(image, (w, h), gravity, offset_scale, false);
    CropAction::Area(l.max(0) as u32, t.max(0) as u32, w, h)
}

/// Resolves an extend: the canvas and the image's place on it, or `None`
/// when the image already covers the box (imgproxy's `extendImage`).
pub(crate) fn extend_area(
    image: (u32, u32),
    width: u32,
    height: u32,
    gravity: &Gravity,
    offset_scale: f64,
) -> Option<(u32, u32, u32, u32)> {
    if width <= image.0 && height <= image.1 {
        return None;
    }
    let w = if width == 0 {
        image.0
    } else {
        width.max(image.0)
    };
    let h = if height == 0 {
        image.1
    } else {
        height.max(image.1)
    };
    let (x, y) = position((w, h), image, gravity, offset_scale, false);
    Some((x.max(0) as u32, y.max(0) as u32, w, h))
}

/// The trimmed box adjusted for `equal_hor`/`equal_ver` (the larger margin
/// of each pair wins, so the subject stays centred). `None` = nothing left
/// to keep (the image is all background): keep it whole.
pub(crate) fn trim_box(
    image: (u32, u32),
    found: (u32, u32, u32, u32),
    equal_hor: bool,
    equal_ver: bool,
) -> Option<(u32, u32, u32, u32)> {
    let (mut l, mut t, mut w, mut h) = (
        i64::from(found.0),
        i64::from(found.1),
        i64::from(found.2),
        i64::from(found.3),
    );
    if equal_hor {
        let right = i64::from(image.0) - l - w;
        let diff = right - l;
        if diff > 0 {
            w += diff;
        } else if diff < 0 {
            l = right;
            w -= diff;
        }
    }
    if equal_ver {
        let bottom = i64::from(image.1) - t - h;
        let diff = bottom - t;
        if diff > 0 {
            h += diff;
        } else if diff < 0 {
            t = bottom;
            h -= diff;
        }
    }
    if w <= 0 || h <= 0 || l < 0 || t < 0 {
        return None;
    }
    let fits = l + w <= i64::from(image.0) && t + h <= i64::from(image.1);
    fits.then_some((l as u32, t as u32, w as u32, h as u32))
}

/// Largest side an encoder accepts, and the scale that brings an image
/// within it (imgproxy's `fix_size.go`). GIF also limits width × height.
pub(crate) fn encoder_limit_scale(format: Format, width: u32, height: u32) -> Option<f64> {
    let longest = f64::from(width.max(height));
    match format {
        Format::Webp => {
            let shrink = longest / 16383.0;
            (shrink > 1.0).then(|| 1.0 / shrink)
        }
        Format::Avif | Format::Heic => {
            let shrink = longest / 16384.0;
            (shrink > 1.0).then(|| 1.0 / shrink)
        }
        Format::Gif => {
            let area = f64::from(width) * f64::from(height) / f64::from(i32::MAX / 4);
            let shrink = (longest / 65535.0).max(area);
            (shrink > 1.0).then(|| (1.0 / shrink).sqrt())
        }
        _ => None,
    }
}
