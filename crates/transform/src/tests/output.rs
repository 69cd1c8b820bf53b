//! Output formats, quality, animation, max_bytes, watermark, metadata.

use std::sync::Arc;

use bytes::Bytes;

use super::fixtures::*;
use crate::vips::Saver;
use crate::{EngineSettings, Format, Job, pipeline, sniff};
use imgforge_imgproxy::{GravityKind, ProcessingOptions, Watermark};

#[test]
fn every_output_format_by_magic_bytes_and_reload() {
    let src = quadrant_png(64, 48);
    for format in [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Avif,
        Format::Gif,
    ] {
        let out = ok(&src, format, |o| o.width = 32);
        assert_eq!(out.format, format);
        assert_eq!(sniff(&out.bytes), Some(format), "{format}");
        let img = decode(&out.bytes);
        assert_eq!((img.width(), img.height()), (32, 24), "{format}");
        assert_rgb(&pixel(&out.bytes, 4, 4), RED, 60.0);
    }
}

#[test]
fn avif_is_av1_not_hevc() {
    let out = ok(&quadrant_png(64, 64), Format::Avif, |_| {});
    assert_eq!(&out.bytes[4..8], b"ftyp");
    assert_eq!(&out.bytes[8..12], b"avif", "major brand");
    assert!(!out.bytes.windows(4).any(|w| w == b"heic"));
    assert!(out.bytes.windows(4).any(|w| w == b"av01"), "AV1 item type");
}

#[test]
fn tiny_avif_falls_back() {
    let out = ok(&quadrant_png(64, 64), Format::Avif, |o| o.width = 8);
    assert_eq!((out.format, out.width), (Format::Jpeg, 8));
    assert_eq!(sniff(&out.bytes), Some(Format::Jpeg));
    let out = ok(&half_transparent_png(64, 64), Format::Avif, |o| o.width = 8);
    assert_eq!(out.format, Format::Png);
}

#[test]
fn quality_follows_options_and_defaults() {
    let mut px = Vec::new();
    for i in 0..(128 * 128u32) {
        let v = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
        px.extend_from_slice(&[v, v / 2, 255 - v]);
    }
    let src = png(&image(&px, 128, 128, 3));
    let low = ok(&src, Format::Jpeg, |o| o.quality = 10);
    let high = ok(&src, Format::Jpeg, |o| o.quality = 95);
    assert!(low.bytes.len() * 2 < high.bytes.len());
    // fq for this format wins over the default
    let fq = ok(&src, Format::Jpeg, |o| {
        o.format_quality.insert(Format::Jpeg, 10);
    });
    assert_eq!(fq.bytes.len(), low.bytes.len());
}

#[test]
fn max_bytes_lowers_quality_until_it_fits() {
    let mut px = Vec::new();
    for i in 0..(256 * 256u32) {
        let v = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
        px.extend_from_slice(&[v, v ^ 0x55, 255 - v]);
    }
    let src = png(&image(&px, 256, 256, 3));
    let full = ok(&src, Format::Jpeg, |o| o.quality = 90);
    let limit = full.bytes.len() as u64 / 3;
    let fitted = ok(&src, Format::Jpeg, |o| {
        o.quality = 90;
        o.max_bytes = limit;
    });
    assert!(
        fitted.bytes.len() as u64 <= limit,
        "{} > {limit}",
        fitted.bytes.len()
    );
    // PNG has no quality: max_bytes does not apply
    let png_out = ok(&src, Format::Png, |o| o.max_bytes = 100);
    assert!(png_out.bytes.len() > 100);
}

#[test]
fn animation_stays_animated() {
    for (saver, format) in [(Saver::Gif, Format::Gif), (Saver::Webp, Format::Webp)] {
        let src = animation(40, 30, saver);
        let out = ok(&src, format, |o| o.width = 20);
        assert_eq!((out.width, out.height, out.pages), (20, 15, 3), "{format}");
        let probe = pipeline::probe(&Bytes::from(out.bytes.clone())).expect("probe");
        assert!(probe.animated && probe.pages == 3, "{probe:?}");
        let strip = decode(&out.bytes);
        assert_eq!(strip.height(), 45);
        assert_rgb(&strip.getpoint(10, 7).expect("px"), RED, 40.0);
        assert_rgb(&strip.getpoint(10, 22).expect("px"), GREEN, 40.0);
        assert_rgb(&strip.getpoint(10, 37).expect("px"), BLUE, 40.0);
        assert_eq!(strip.delays(), vec![100, 100, 100]);
    }
}

#[test]
fn animation_frame_limit_and_still_outputs() {
    let src = animation(40, 30, Saver::Gif);
    let two = EngineSettings {
        max_animation_frames: 2,
        ..settings()
    };
    let out = run_with(&two, &src, Format::Gif, |_| {}).expect("transform");
    assert_eq!(out.pages, 2);
    // JPEG cannot animate: the first frame
    let out = ok(&src, Format::Jpeg, |_| {});
    assert_eq!((out.width, out.height, out.pages), (40, 30, 1));
    assert_rgb(&pixel(&out.bytes, 20, 15), RED, 40.0);
    // imgproxy's default of one frame keeps GIF still
    let one = EngineSettings::default();
    let out = run_with(&one, &src, Format::Gif, |_| {}).expect("transform");
    assert_eq!(out.pages, 1);
    assert!(
        !pipeline::probe(&Bytes::from(out.bytes))
            .expect("probe")
            .animated
    );
    // the URL option overrides the engine's limit
    let out = run_with(&one, &src, Format::Gif, |o| {
        o.max_animation_frames = Some(3)
    })
    .expect("transform");
    assert_eq!(out.pages, 3);
}

fn watermarked(position: GravityKind, opacity: f64, scale: f64) -> crate::Encoded {
    init();
    let base = png(&solid(64, 64, [255, 255, 255]));
    let mark = Arc::new(png(&solid(8, 8, [0, 0, 0])));
    let o = ProcessingOptions {
        watermark: Watermark {
            opacity,
            position,
            x_offset: 0.0,
            y_offset: 0.0,
            scale,
        },
        ..ProcessingOptions::default()
    };
    let job = Job::new(base, o).format(Format::Png).watermark(mark);
    pipeline::transform(&settings(), job, None)
        .expect("transform")
        .bytes
}

#[test]
fn watermark_position_opacity_tiling_and_scale() {
    let out = watermarked(GravityKind::NorthWest, 1.0, 0.0);
    assert_rgb(&pixel(&out, 2, 2), BLACK, 1.0);
    assert_rgb(&pixel(&out, 40, 40), WHITE, 1.0);
    let out = watermarked(GravityKind::SouthEast, 0.5, 0.0);
    assert_rgb(&pixel(&out, 60, 60), [127.5; 3], 2.0);
    assert_rgb(&pixel(&out, 2, 2), WHITE, 1.0);
    let out = watermarked(GravityKind::Replicate, 1.0, 0.0);
    let black = (0..8)
        .flat_map(|y| (0..8).map(move |x| (x * 8 + 3, y * 8 + 3)))
        .filter(|&(x, y)| pixel(&out, x, y)[0] < 10.0)
        .count();
    assert_eq!(black, 64, "tiles cover the image");
    // scale 0.5: the mark is 32 px wide
    let out = watermarked(GravityKind::NorthWest, 1.0, 0.5);
    assert_rgb(&pixel(&out, 30, 30), BLACK, 1.0);
    assert_rgb(&pixel(&out, 34, 34), WHITE, 1.0);
}

#[test]
fn metadata_is_stripped_and_orientation_not_reapplied() {
    let img = quadrant(64, 32).with_orientation(6).expect("orientation");
    let src = save(&img, Saver::Jpeg { progressive: false });
    let out = ok(&src, Format::Jpeg, |_| {});
    assert_eq!(decode(&out.bytes).orientation(), 1);
    let kept = ok(&src, Format::Jpeg, |o| o.strip_metadata = false);
    // rotated pixels must not carry the tag that would rotate them again
    assert_eq!(decode(&kept.bytes).orientation(), 1);
    let unrotated = ok(&src, Format::Jpeg, |o| {
        o.strip_metadata = false;
        o.auto_rotate = false;
    });
    assert_eq!(decode(&unrotated.bytes).orientation(), 6);
}

#[test]
fn progressive_jpeg_setting() {
    let src = quadrant_png(64, 64);
    let s = EngineSettings {
        jpeg_progressive: true,
        ..settings()
    };
    let out = run_with(&s, &src, Format::Jpeg, |_| {}).expect("transform");
    // SOF2 marker: progressive DCT
    assert!(out.bytes.windows(2).any(|w| w == [0xFF, 0xC2]));
}
