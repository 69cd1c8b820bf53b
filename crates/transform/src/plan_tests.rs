//! Plan and geometry rules on numbers (no libvips).

use super::*;
use crate::geometry::{CropAction, crop_action, extend_area, position, trim_box};
use imgforge_imgproxy::{Crop, Extend, Padding};

fn opts(f: impl FnOnce(&mut ProcessingOptions)) -> ProcessingOptions {
    let mut o = ProcessingOptions::default();
    f(&mut o);
    o
}

fn result_size(o: &ProcessingOptions, w: u32, h: u32) -> (u32, u32) {
    let plan = Plan::new(o, w, h, 1, 0);
    simulate(&plan.steps(), w, h)
}

/// Runs `steps` on a size only, resizing as libvips does (rounded): the
/// expected result size of a plan.
fn simulate(steps: &[Step], width: u32, height: u32) -> (u32, u32) {
    let (mut w, mut h) = (width, height);
    for step in steps {
        match step {
            Step::Crop {
                width,
                height,
                gravity,
                offset_scale,
            } => match crop_action((w, h), *width, *height, gravity, *offset_scale) {
                CropAction::Keep => {}
                CropAction::Smart(cw, ch) | CropAction::Area(_, _, cw, ch) => (w, h) = (cw, ch),
            },
            Step::Resize { hscale, vscale } => {
                (w, h) = (scale(w, *hscale).max(1), scale(h, *vscale).max(1));
            }
            Step::Rotate(a) if a % 180 == 90 => (w, h) = (h, w),
            Step::Extend {
                width,
                height,
                gravity,
                offset_scale,
            } => {
                if let Some((_, _, ew, eh)) =
                    extend_area((w, h), *width, *height, gravity, *offset_scale)
                {
                    (w, h) = (ew, eh);
                }
            }
            Step::Pad {
                top,
                right,
                bottom,
                left,
            } => (w, h) = (w + left + right, h + top + bottom),
            Step::Rotate(_) | Step::Flip { .. } | Step::Filters { .. } => {}
        }
    }
    (w, h)
}

fn g(kind: GravityKind, x: f64, y: f64) -> Gravity {
    Gravity { kind, x, y }
}

#[test]
fn fit_keeps_aspect_ratio() {
    let o = opts(|o| o.width = 400);
    assert_eq!(result_size(&o, 6028, 3391), (400, 225));
    let o = opts(|o| {
        o.width = 300;
        o.height = 300;
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 150));
}

#[test]
fn zero_dimension_follows_the_other() {
    let o = opts(|o| o.height = 100);
    assert_eq!(result_size(&o, 1000, 500), (200, 100));
    // force with one side 0 keeps the source's other side
    let o = opts(|o| {
        o.resizing_type = ResizingType::Force;
        o.width = 100;
    });
    assert_eq!(result_size(&o, 1000, 500), (100, 500));
}

#[test]
fn fill_crops_to_the_box() {
    let o = opts(|o| {
        o.resizing_type = ResizingType::Fill;
        o.width = 300;
        o.height = 200;
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 200));
    let plan = Plan::new(&o, 1000, 500, 1, 0);
    assert!((plan.wscale - 0.4).abs() < 1e-9, "{}", plan.wscale);
}

#[test]
fn fill_down_never_enlarges_but_keeps_the_ratio() {
    let o = opts(|o| {
        o.resizing_type = ResizingType::FillDown;
        o.width = 300;
        o.height = 200;
    });
    assert_eq!(result_size(&o, 200, 100), (150, 100));
    assert_eq!(result_size(&o, 1000, 500), (300, 200));
}

#[test]
fn force_ignores_the_ratio() {
    let o = opts(|o| {
        o.resizing_type = ResizingType::Force;
        o.width = 300;
        o.height = 200;
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 200));
}

#[test]
fn auto_fills_same_orientation_and_fits_otherwise() {
    let o = opts(|o| {
        o.resizing_type = ResizingType::Auto;
        o.width = 300;
        o.height = 200;
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 200));
    assert_eq!(result_size(&o, 500, 1000), (100, 200));
}

#[test]
fn enlarge_only_when_asked() {
    let o = opts(|o| o.width = 2000);
    assert_eq!(result_size(&o, 1000, 500), (1000, 500));
    let o = opts(|o| {
        o.width = 2000;
        o.enlarge = true;
    });
    assert_eq!(result_size(&o, 1000, 500), (2000, 1000));
}

#[test]
fn dpr_and_zoom_multiply() {
    let o = opts(|o| {
        o.width = 200;
        o.dpr = 2.0;
    });
    assert_eq!(result_size(&o, 1000, 500), (400, 200));
    let o = opts(|o| {
        o.width = 400;
        o.zoom_x = 0.5;
        o.zoom_y = 0.5;
    });
    assert_eq!(result_size(&o, 1000, 500), (200, 100));
    // dpr cannot enlarge past the source without `enlarge`
    let o = opts(|o| {
        o.width = 800;
        o.dpr = 2.0;
    });
    assert_eq!(result_size(&o, 1000, 500), (1000, 500));
}

#[test]
fn min_width_and_height_win_over_fit() {
    // alone, it enlarges (it is applied after the enlarge rule)
    let o = opts(|o| o.min_width = 2000);
    assert_eq!(result_size(&o, 1000, 500), (2000, 1000));
    let o = opts(|o| o.min_height = 600);
    assert_eq!(result_size(&o, 1000, 500), (1200, 600));
    // with a size, the result is still cropped to that size (imgproxy's docs:
    // "use this combination with care")
    let o = opts(|o| {
        o.height = 50;
        o.min_width = 200;
    });
    assert_eq!(result_size(&o, 1000, 500), (200, 50));
}

#[test]
fn exif_orientation_swaps_axes() {
    // stored 500x1000, orientation 6 (rotate 90): displayed 1000x500
    let o = opts(|o| o.width = 400);
    let plan = Plan::new(&o, 500, 1000, 6, 0);
    assert_eq!((plan.src_width, plan.src_height), (1000, 500));
    assert_eq!(simulate(&plan.steps(), 500, 1000), (400, 200));
    assert!(plan.steps().contains(&Step::Rotate(90)));
    // without auto_rotate the stored layout stays
    let o = opts(|o| {
        o.width = 400;
        o.auto_rotate = false;
    });
    assert_eq!(result_size(&o, 500, 1000), (400, 800));
}

#[test]
fn user_rotation_swaps_the_result() {
    let o = opts(|o| {
        o.rotate = 90;
        o.width = 100;
    });
    let plan = Plan::new(&o, 1000, 500, 1, 0);
    assert_eq!(simulate(&plan.steps(), 1000, 500), (100, 200));
}

#[test]
fn crop_absolute_and_relative() {
    let o = opts(|o| {
        o.crop = Crop {
            width: 0.5,
            height: 100.0,
            gravity: None,
        };
    });
    assert_eq!(result_size(&o, 1000, 500), (500, 100));
    let o = opts(|o| {
        o.crop = Crop {
            width: 400.0,
            height: 0.0,
            gravity: None,
        };
        o.width = 200;
    });
    assert_eq!(result_size(&o, 1000, 500), (200, 250));
}

#[test]
fn extend_and_aspect_ratio_extension() {
    let o = opts(|o| {
        o.width = 300;
        o.height = 300;
        o.extend = Extend {
            enabled: true,
            gravity: Gravity::default(),
        };
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 300));
    // extend does not enlarge the image itself
    assert_eq!(result_size(&o, 100, 50), (300, 300));
    let o = opts(|o| {
        o.width = 300;
        o.height = 300;
        o.extend_aspect_ratio = Extend {
            enabled: true,
            gravity: Gravity::default(),
        };
    });
    assert_eq!(result_size(&o, 1000, 500), (300, 300));
    // small source: extended to the ratio, not to the box
    assert_eq!(result_size(&o, 100, 50), (100, 100));
}

#[test]
fn padding_follows_dpr() {
    let o = opts(|o| {
        o.width = 100;
        o.dpr = 2.0;
        o.padding = Padding {
            top: 5,
            right: 10,
            bottom: 5,
            left: 10,
        };
    });
    assert_eq!(result_size(&o, 1000, 500), (240, 120));
}

#[test]
fn max_result_dimension_scales_down() {
    let o = ProcessingOptions::default();
    let plan = Plan::new(&o, 4000, 2000, 1, 1000);
    assert_eq!(simulate(&plan.steps(), 4000, 2000), (1000, 500));
    let o = opts(|o| {
        o.width = 300;
        o.height = 300;
        o.extend = Extend {
            enabled: true,
            gravity: Gravity::default(),
        };
    });
    let plan = Plan::new(&o, 1000, 500, 1, 150);
    assert_eq!(simulate(&plan.steps(), 1000, 500), (150, 150));
}

#[test]
fn preshrink_then_remaining_scale() {
    let o = opts(|o| o.width = 400);
    let mut plan = Plan::new(&o, 6028, 3391, 1, 0);
    let pre = plan.preshrink();
    assert!((pre - 6028.0 / 400.0).abs() < 0.1, "{pre}");
    // the JPEG decoder shrank by 8 (rounding up)
    plan.apply_preshrink(754, 424);
    assert_eq!(simulate(&plan.steps(), 754, 424), (400, 225));
    // an exact preshrink leaves no resize
    let o = opts(|o| o.width = 500);
    let mut plan = Plan::new(&o, 1000, 500, 1, 0);
    plan.apply_preshrink(500, 250);
    assert!(
        !plan
            .steps()
            .iter()
            .any(|s| matches!(s, Step::Resize { .. }))
    );
}

#[test]
fn preshrink_adjusts_crop_and_offsets() {
    let o = opts(|o| {
        o.crop = Crop {
            width: 400.0,
            height: 200.0,
            gravity: Some(g(GravityKind::NorthWest, 100.0, 0.25)),
        };
        o.width = 100;
    });
    let mut plan = Plan::new(&o, 1600, 800, 1, 0);
    plan.apply_preshrink(400, 200);
    assert_eq!((plan.crop_width, plan.crop_height), (100, 50));
    assert_eq!(plan.crop_gravity.x, 25.0);
    assert_eq!(plan.crop_gravity.y, 0.25);
}

#[test]
fn positions_by_gravity() {
    use GravityKind::*;
    let outer = (100, 50);
    let inner = (20, 10);
    assert_eq!(
        position(outer, inner, &g(Center, 0.0, 0.0), 1.0, false),
        (40, 20)
    );
    assert_eq!(
        position(outer, inner, &g(NorthWest, 0.0, 0.0), 1.0, false),
        (0, 0)
    );
    assert_eq!(
        position(outer, inner, &g(SouthEast, 0.0, 0.0), 1.0, false),
        (80, 40)
    );
    // east offsets push inwards; absolute offsets follow dpr
    assert_eq!(
        position(outer, inner, &g(East, 5.0, 0.0), 2.0, false),
        (70, 20)
    );
    // relative offsets are fractions of the outer box
    assert_eq!(
        position(outer, inner, &g(West, 0.1, 0.0), 1.0, false),
        (10, 20)
    );
    // clamped inside
    assert_eq!(
        position(outer, inner, &g(West, 500.0, 0.0), 1.0, false),
        (80, 20)
    );
    // overflow allowed keeps one pixel inside
    assert_eq!(
        position(outer, inner, &g(West, -500.0, 0.0), 1.0, true),
        (-19, 20)
    );
    // focus point centres on the point, clamped
    assert_eq!(
        position(outer, inner, &g(FocusPoint, 0.5, 0.5), 1.0, false),
        (40, 20)
    );
    assert_eq!(
        position(outer, inner, &g(FocusPoint, 1.0, 0.0), 1.0, false),
        (80, 0)
    );
}

/// A labelled grid: cropping before rotation/flip with the rewritten gravity
/// selects the same pixels as rotating/flipping first.
#[test]
fn gravity_survives_rotation_and_flip() {
    type Grid = Vec<Vec<(u32, u32)>>;
    fn grid(w: u32, h: u32) -> Grid {
        (0..h).map(|y| (0..w).map(|x| (x, y)).collect()).collect()
    }
    fn rot90(g: &Grid) -> Grid {
        let (h, w) = (g.len(), g[0].len());
        (0..w)
            .map(|x| (0..h).rev().map(|y| g[y][x]).collect())
            .collect()
    }
    fn rotate(g: &Grid, angle: u16) -> Grid {
        let mut g = g.clone();
        for _ in 0..angle / 90 {
            g = rot90(&g);
        }
        g
    }
    fn flip(g: &Grid, x: bool, y: bool) -> Grid {
        let mut g = g.clone();
        if x {
            g.iter_mut().for_each(|row| row.reverse());
        }
        if y {
            g.reverse();
        }
        g
    }
    fn crop(g: &Grid, w: u32, h: u32, gravity: &Gravity) -> Grid {
        let size = (g[0].len() as u32, g.len() as u32);
        let (l, t) = position(size, (w, h), gravity, 1.0, false);
        g[t as usize..t as usize + h as usize]
            .iter()
            .map(|row| row[l as usize..l as usize + w as usize].to_vec())
            .collect()
    }
    use GravityKind::*;
    let kinds = [
        Center, North, East, South, West, NorthWest, NorthEast, SouthWest, SouthEast,
    ];
    let source = grid(9, 13);
    for kind in kinds {
        for (x, y) in [(0.0, 0.0), (1.0, 2.0), (2.0, 1.0)] {
            for angle in [0u16, 90, 180, 270] {
                for (fx, fy) in [(false, false), (true, false), (false, true), (true, true)] {
                    let gravity = g(kind, x, y);
                    let (cw, ch) = (5, 1);
                    let expected = crop(&flip(&rotate(&source, angle), fx, fy), cw, ch, &gravity);
                    let mut adjusted = gravity;
                    rotate_flip_gravity(&mut adjusted, angle, fx, fy);
                    let (w, h) = if angle % 180 == 90 {
                        (ch, cw)
                    } else {
                        (cw, ch)
                    };
                    let got = flip(&rotate(&crop(&source, w, h, &adjusted), angle), fx, fy);
                    assert_eq!(got, expected, "{kind:?} {x},{y} rot {angle} flip {fx},{fy}");
                }
            }
        }
    }
    let fp = g(FocusPoint, 0.25, 0.75);
    let mut adjusted = fp;
    rotate_flip_gravity(&mut adjusted, 90, false, false);
    assert_eq!((adjusted.x, adjusted.y), (0.75, 0.75));
}

#[test]
fn trim_box_equalises_margins() {
    // found: left 10, top 5, 50x20 in 100x40
    let found = (10, 5, 50, 20);
    assert_eq!(trim_box((100, 40), found, false, false), Some(found));
    // right margin 40 > left 10: grow to the right by 30
    assert_eq!(
        trim_box((100, 40), found, true, false),
        Some((10, 5, 80, 20))
    );
    // bottom margin 15 > top 5
    assert_eq!(
        trim_box((100, 40), found, false, true),
        Some((10, 5, 50, 30))
    );
    // everything is background
    assert_eq!(trim_box((100, 40), (0, 0, 0, 0), false, false), None);
}

#[test]
fn encoder_limits() {
    use crate::geometry::encoder_limit_scale;
    use imgforge_imgproxy::Format;
    assert_eq!(encoder_limit_scale(Format::Jpeg, 70000, 10), None);
    assert_eq!(encoder_limit_scale(Format::Webp, 16383, 100), None);
    let s = encoder_limit_scale(Format::Webp, 32766, 100).unwrap_or(1.0);
    assert!((s - 0.5).abs() < 1e-9);
    assert!(encoder_limit_scale(Format::Avif, 20000, 20000).is_some());
}
