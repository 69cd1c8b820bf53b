//! Resize, crop, gravity, rotation, extend, padding, background, trim and
//! filters, checked on decoded output.

use super::fixtures::*;
use crate::Format;
use crate::vips::Saver;
use imgforge_imgproxy::{Crop, Extend, Gravity, GravityKind, Padding, ResizingType, Rgb, Trim};

fn gravity(kind: GravityKind, x: f64, y: f64) -> Gravity {
    Gravity { kind, x, y }
}

#[test]
fn fit_resizes_with_shrink_on_load() {
    let src = save(&quadrant(640, 480), Saver::Jpeg { progressive: false });
    let out = ok(&src, Format::Jpeg, |o| o.width = 80);
    assert_eq!((out.width, out.height, out.pages), (80, 60, 1));
    let img = decode(&out.bytes);
    assert_eq!((img.width(), img.height()), (80, 60));
    assert_rgb(&pixel(&out.bytes, 10, 10), RED, 40.0);
    assert_rgb(&pixel(&out.bytes, 70, 50), YELLOW, 40.0);
    assert_eq!(out.source.width, 640);
}

#[test]
fn fill_with_gravity_keeps_the_right_quadrant() {
    let src = quadrant_png(64, 64);
    let cases = [
        (GravityKind::West, [RED, BLUE]),
        (GravityKind::East, [GREEN, YELLOW]),
    ];
    for (kind, [top, bottom]) in cases {
        let out = ok(&src, Format::Png, |o| {
            o.resizing_type = ResizingType::Fill;
            o.width = 16;
            o.height = 32;
            o.gravity = gravity(kind, 0.0, 0.0);
        });
        assert_eq!((out.width, out.height), (16, 32));
        assert_rgb(&pixel(&out.bytes, 8, 4), top, 2.0);
        assert_rgb(&pixel(&out.bytes, 8, 28), bottom, 2.0);
    }
}

#[test]
fn crop_by_anchor_offset_and_focus_point() {
    let src = quadrant_png(64, 64);
    let cases = [
        (gravity(GravityKind::NorthEast, 0.0, 0.0), GREEN),
        (gravity(GravityKind::SouthWest, 0.0, 0.0), BLUE),
        (gravity(GravityKind::SouthEast, 0.0, 0.0), YELLOW),
        (gravity(GravityKind::NorthWest, 32.0, 32.0), YELLOW),
        (gravity(GravityKind::NorthWest, 0.5, 0.0), GREEN),
        (gravity(GravityKind::FocusPoint, 0.1, 0.9), BLUE),
        (gravity(GravityKind::Center, -16.0, -16.0), RED),
    ];
    for (g, colour) in cases {
        let out = ok(&src, Format::Png, |o| {
            o.crop = Crop {
                width: 16.0,
                height: 16.0,
                gravity: Some(g),
            };
        });
        assert_eq!((out.width, out.height), (16, 16), "{g:?}");
        for (x, y) in [(0, 0), (15, 15), (8, 8)] {
            assert_rgb(&pixel(&out.bytes, x, y), colour, 2.0);
        }
    }
}

#[test]
fn smart_crop_gives_the_box() {
    let src = quadrant_png(64, 48);
    let out = ok(&src, Format::Png, |o| {
        o.resizing_type = ResizingType::Fill;
        o.width = 20;
        o.height = 20;
        o.gravity = gravity(GravityKind::Smart, 0.0, 0.0);
    });
    assert_eq!((out.width, out.height), (20, 20));
}

#[test]
fn rotate_swaps_sides_and_moves_corners() {
    let src = quadrant_png(64, 32);
    let out = ok(&src, Format::Png, |o| o.rotate = 90);
    assert_eq!((out.width, out.height), (32, 64));
    // clockwise: the top-left (red) goes to the top-right
    assert_rgb(&pixel(&out.bytes, 28, 4), RED, 1.0);
    assert_rgb(&pixel(&out.bytes, 4, 4), BLUE, 1.0);
    let out = ok(&src, Format::Png, |o| o.rotate = 180);
    assert_eq!((out.width, out.height), (64, 32));
    assert_rgb(&pixel(&out.bytes, 4, 4), YELLOW, 1.0);
}

#[test]
fn flip_mirrors() {
    let src = quadrant_png(64, 32);
    let out = ok(&src, Format::Png, |o| o.flip_horizontal = true);
    assert_rgb(&pixel(&out.bytes, 4, 4), GREEN, 1.0);
    let out = ok(&src, Format::Png, |o| o.flip_vertical = true);
    assert_rgb(&pixel(&out.bytes, 4, 4), BLUE, 1.0);
}

#[test]
fn exif_orientation_is_applied_and_can_be_ignored() {
    // stored 64x32 with orientation 6: displayed rotated 90° clockwise
    let img = quadrant(64, 32).with_orientation(6).expect("orientation");
    let src = save(&img, Saver::Jpeg { progressive: false });
    let out = ok(&src, Format::Png, |_| {});
    assert_eq!((out.width, out.height), (32, 64));
    assert_rgb(&pixel(&out.bytes, 28, 4), RED, 40.0);
    let out = ok(&src, Format::Png, |o| o.auto_rotate = false);
    assert_eq!((out.width, out.height), (64, 32));
    // with shrink-on-load too
    let big = save(
        &quadrant(640, 320).with_orientation(6).expect("orientation"),
        Saver::Jpeg { progressive: false },
    );
    let out = ok(&big, Format::Jpeg, |o| o.width = 40);
    assert_eq!((out.width, out.height), (40, 80));
}

#[test]
fn extend_centres_on_a_transparent_or_background_canvas() {
    let src = quadrant_png(64, 32);
    let out = ok(&src, Format::Png, |o| {
        o.width = 100;
        o.height = 100;
        o.extend = Extend {
            enabled: true,
            gravity: Gravity::default(),
        };
    });
    assert_eq!((out.width, out.height), (100, 100));
    assert_eq!(pixel(&out.bytes, 0, 0)[3], 0.0, "transparent corner");
    assert_rgb(&pixel(&out.bytes, 20, 36), RED, 1.0);
    let out = ok(&src, Format::Jpeg, |o| {
        o.width = 100;
        o.height = 100;
        o.extend = Extend {
            enabled: true,
            gravity: gravity(GravityKind::North, 0.0, 0.0),
        };
        o.background = Some(Rgb { r: 0, g: 0, b: 255 });
    });
    assert_rgb(&pixel(&out.bytes, 50, 90), BLUE, 40.0);
    assert_rgb(&pixel(&out.bytes, 20, 4), RED, 40.0);
}

#[test]
fn extend_aspect_ratio_and_padding() {
    let src = quadrant_png(64, 32);
    let out = ok(&src, Format::Png, |o| {
        o.width = 50;
        o.height = 50;
        o.extend_aspect_ratio = Extend {
            enabled: true,
            gravity: Gravity::default(),
        };
    });
    assert_eq!((out.width, out.height), (50, 50));
    let out = ok(&src, Format::Png, |o| {
        o.padding = Padding {
            top: 10,
            right: 5,
            bottom: 10,
            left: 5,
        };
        o.background = Some(Rgb { r: 0, g: 255, b: 0 });
    });
    assert_eq!((out.width, out.height), (74, 52));
    assert_rgb(&pixel(&out.bytes, 0, 0), GREEN, 1.0);
    assert_rgb(&pixel(&out.bytes, 8, 12), RED, 1.0);
}

#[test]
fn background_flattens_alpha() {
    let src = half_transparent_png(64, 32);
    // JPEG has no alpha: white by default
    let out = ok(&src, Format::Jpeg, |_| {});
    assert_rgb(&pixel(&out.bytes, 8, 16), WHITE, 10.0);
    assert_rgb(&pixel(&out.bytes, 56, 16), RED, 40.0);
    // `bg` fills with that colour, even for PNG
    let out = ok(&src, Format::Png, |o| {
        o.background = Some(Rgb {
            r: 10,
            g: 20,
            b: 200,
        });
    });
    let p = pixel(&out.bytes, 8, 16);
    assert_eq!(p.len(), 3, "flattened: no alpha band");
    assert_rgb(&p, [10.0, 20.0, 200.0], 1.0);
    // PNG without `bg` keeps transparency
    let out = ok(&src, Format::Png, |_| {});
    assert_eq!(pixel(&out.bytes, 8, 16), vec![0.0, 0.0, 0.0, 0.0]);
    assert_eq!(decode(&out.bytes).bands(), 4);
}

#[test]
fn trim_removes_a_uniform_border() {
    let mut px = Vec::new();
    for y in 0..40u32 {
        for x in 0..60u32 {
            let inside = (10..30).contains(&x) && (5..25).contains(&y);
            px.extend_from_slice(&if inside { [255, 0, 0] } else { [255, 255, 255] });
        }
    }
    let src = png(&image(&px, 60, 40, 3));
    let out = ok(&src, Format::Png, |o| {
        o.trim = Trim {
            threshold: Some(10.0),
            ..Trim::default()
        };
    });
    assert_eq!((out.width, out.height), (20, 20));
    assert_rgb(&pixel(&out.bytes, 0, 0), RED, 1.0);
    // equal margins: right margin 30 > left 10 → keep 10 on both sides
    let out = ok(&src, Format::Png, |o| {
        o.trim = Trim {
            threshold: Some(10.0),
            color: Some(Rgb {
                r: 255,
                g: 255,
                b: 255,
            }),
            equal_hor: true,
            equal_ver: false,
        };
    });
    assert_eq!((out.width, out.height), (40, 20));
}

#[test]
fn filters_keep_size_and_pixelate_makes_blocks() {
    let src = quadrant_png(64, 64);
    for f in [
        |o: &mut imgforge_imgproxy::ProcessingOptions| o.blur = 2.0,
        |o: &mut imgforge_imgproxy::ProcessingOptions| o.sharpen = 1.0,
    ] {
        let out = ok(&src, Format::Png, f);
        assert_eq!((out.width, out.height), (64, 64));
    }
    let mut px = Vec::new();
    for y in 0..32u32 {
        for x in 0..32u32 {
            px.extend_from_slice(&[(x * 8) as u8, (y * 8) as u8, 0]);
        }
    }
    let src = png(&image(&px, 32, 32, 3));
    let out = ok(&src, Format::Png, |o| o.pixelate = 8);
    assert_eq!((out.width, out.height), (32, 32));
    assert_eq!(pixel(&out.bytes, 0, 0), pixel(&out.bytes, 7, 7));
    assert_ne!(pixel(&out.bytes, 0, 0), pixel(&out.bytes, 8, 0));
}

#[test]
fn dpr_zoom_min_size_and_result_limit() {
    let src = quadrant_png(200, 100);
    let out = ok(&src, Format::Png, |o| {
        o.width = 50;
        o.dpr = 2.0;
    });
    assert_eq!((out.width, out.height), (100, 50));
    let out = ok(&src, Format::Png, |o| {
        o.zoom_x = 0.5;
        o.zoom_y = 0.25;
    });
    assert_eq!((out.width, out.height), (100, 25));
    let out = ok(&src, Format::Png, |o| o.min_width = 300);
    assert_eq!((out.width, out.height), (300, 150));
    // the result is still cropped to the requested height
    let out = ok(&src, Format::Png, |o| {
        o.height = 10;
        o.min_width = 60;
    });
    assert_eq!((out.width, out.height), (60, 10));
    let out = ok(&src, Format::Png, |o| o.max_result_dimension = Some(50));
    assert_eq!((out.width, out.height), (50, 25));
    let out = ok(&src, Format::Png, |o| {
        o.width = 400;
        o.enlarge = true;
        o.resizing_type = ResizingType::Force;
        o.height = 50;
    });
    assert_eq!((out.width, out.height), (400, 50));
}
