//! The direct libjpeg path (vips/jpeg.c: JPEGs scaled by 1/4 or 1/8, and small ones at 1 or 1/2)
//! must give what libvips's own loader gives: same size, bands, pixels and metadata, and the same
//! failures.

use bytes::Bytes;

use super::fixtures::*;
use crate::vips::{Access, ErrorKind, Image, LoadOptions, Loader, Saver};
use crate::{Format, TransformError};

/// A JPEG with gradients (so a scaled decode has detail to get wrong).
fn photo(w: u32, h: u32, bands: u32) -> Bytes {
    save(&gradient(w, h, bands), Saver::Jpeg { progressive: false })
}

fn both(src: &Bytes, shrink: i32) -> (Image, Image) {
    init();
    let header = Image::load(src, LoadOptions::new(Loader::Jpeg)).expect("header");
    let direct = Image::decode_jpeg(src, shrink, &header)
        .expect("direct decode")
        .expect("handled directly");
    let vips = Image::load(
        src,
        LoadOptions {
            shrink,
            access: Access::Random,
            ..LoadOptions::new(Loader::Jpeg)
        },
    )
    .expect("libvips load");
    (direct, vips)
}

#[test]
fn direct_decode_matches_the_libvips_loader() {
    for (bands, shrink) in [(3, 8), (3, 4), (3, 2), (3, 1), (1, 8), (1, 1)] {
        let src = photo(1024, 512, bands);
        let (direct, vips) = both(&src, shrink);
        assert_eq!(
            (direct.width(), direct.height(), direct.bands()),
            (vips.width(), vips.height(), vips.bands()),
            "bands {bands} shrink {shrink}"
        );
        assert_eq!(direct.width(), 1024 / shrink as u32);
        for (x, y) in [
            (0, 0),
            (10, 20),
            (100, 50),
            (direct.width() - 1, direct.height() - 1),
        ] {
            let (a, b) = (
                direct.getpoint(x, y).expect("px"),
                vips.getpoint(x, y).expect("px"),
            );
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                assert!((a - b).abs() <= 1.0, "({x},{y}): {a} vs {b}");
            }
        }
    }
}

#[test]
fn direct_decode_keeps_the_header_metadata() {
    let src = save(
        &image(&vec![128; 1024 * 512 * 3], 1024, 512, 3)
            .with_orientation(6)
            .expect("orientation"),
        Saver::Jpeg { progressive: false },
    );
    let (direct, vips) = both(&src, 8);
    assert_eq!(vips.orientation(), 6);
    assert_eq!(direct.orientation(), 6);
    // and the pipeline applies it: stored 1024x512, displayed 512x1024
    let out = ok(&src, Format::Jpeg, |o| o.width = 64);
    assert_eq!((out.width, out.height), (64, 128));
}

#[test]
fn a_truncated_jpeg_fails_the_direct_decode_with_422() {
    let full = photo(1024, 512, 3);
    let cut = full.slice(..full.len() / 2);
    init();
    let header = Image::load(&cut, LoadOptions::new(Loader::Jpeg)).expect("header parses");
    match Image::decode_jpeg(&cut, 8, &header) {
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Decode, "{e:?}");
            assert!(e.message.contains("Premature"), "{e:?}");
        }
        Ok(_) => panic!("a truncated JPEG decoded"),
    }
    // at 1/8 (direct), and whole (direct too: a small source)
    for width in [64, 1000] {
        let err = run(&cut, Format::Jpeg, |o| o.width = width).expect_err("truncated");
        assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
        assert_eq!(err.status(), 422);
    }
}

#[test]
fn cmyk_falls_back_to_libvips() {
    // 256x256 CMYK, made with `vips icc_export … --output-profile cmyk` (a red/green/blue/yellow
    // quadrant image); libvips's loader inverts Adobe CMYK and converts it.
    let src = Bytes::from_static(include_bytes!("cmyk.jpg"));
    init();
    let header = Image::load(&src, LoadOptions::new(Loader::Jpeg)).expect("header");
    assert!(
        Image::decode_jpeg(&src, 8, &header)
            .expect("no error")
            .is_none()
    );
    let out = ok(&src, Format::Png, |o| o.width = 32);
    assert_eq!((out.width, out.height), (32, 32));
    assert_rgb(&pixel(&out.bytes, 4, 4), RED, 60.0);
    assert_rgb(&pixel(&out.bytes, 28, 28), YELLOW, 60.0);
}
