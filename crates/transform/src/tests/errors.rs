//! Error paths: what the engine refuses, and with which status.

use std::time::Instant;

use bytes::Bytes;

use super::fixtures::*;
use crate::vips::Saver;
use crate::{EngineSettings, Format, TransformError, pipeline};

fn photo_jpeg() -> Bytes {
    let mut px = Vec::new();
    for y in 0..256u32 {
        for x in 0..256u32 {
            px.extend_from_slice(&[x as u8, y as u8, (x ^ y) as u8]);
        }
    }
    save(&image(&px, 256, 256, 3), Saver::Jpeg { progressive: false })
}

#[test]
fn truncated_jpeg_is_undecodable() {
    let full = photo_jpeg();
    let cut = full.slice(..full.len() * 6 / 10);
    let err = run(&cut, Format::Jpeg, |o| o.width = 100).expect_err("truncated");
    assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
    assert_eq!(err.status(), 422);
    // also without shrink-on-load, and to another format
    let err = run(&cut, Format::Png, |_| {}).expect_err("truncated");
    assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
}

#[test]
fn corrupt_bytes_are_undecodable() {
    let mut bad = photo_jpeg().to_vec();
    for b in bad.iter_mut().skip(20).take(400) {
        *b = 0x5A;
    }
    let err = run(&Bytes::from(bad), Format::Jpeg, |_| {}).expect_err("corrupt");
    assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
    let png_magic_only = Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really a png at all");
    let err = run(&png_magic_only, Format::Png, |_| {}).expect_err("corrupt");
    assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
}

/// Found by the image_decode fuzz target: a TIFF whose deflate data fails only when the pixels
/// are read (after the header was fine); libtiff's complaint must still blame the data.
#[test]
fn corrupt_tiff_data_is_undecodable() {
    let tiff = Bytes::from_static(include_bytes!("corrupt_deflate.tif"));
    let err = run(&tiff, Format::Jpeg, |o| o.width = 16).expect_err("corrupt");
    assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
    assert_eq!(err.status(), 422);
}

/// Found by the image_decode fuzz target: TIFFs declaring grey plus two extra samples. The
/// flatten onto a colour background used to fail inside libvips (a 500); now a valid one
/// transforms and a corrupt one is the data's fault.
#[test]
fn extra_samples_are_dropped_not_fatal() {
    let red = |o: &mut crate::ProcessingOptions| {
        o.width = 16;
        o.background = Some(imgforge_imgproxy::Rgb { r: 255, g: 0, b: 0 });
    };
    let valid = Bytes::from_static(include_bytes!("extra_samples.tif"));
    let out = run(&valid, Format::Jpeg, red).expect("transformed");
    assert_eq!(crate::sniff(&out.bytes), Some(Format::Jpeg));
    let corrupt = Bytes::from_static(include_bytes!("extra_samples_corrupt.tif"));
    let err = run(&corrupt, Format::Jpeg, red).expect_err("corrupt strips");
    assert_eq!(err.status(), 422, "{err:?}");
}

/// Seen in the soak: with two workers failing at once, one may find libvips's process-wide
/// error buffer already emptied by the other, left with nothing or with only the encoder's
/// complaint that its input failed. Such a failure blames the data (422), not us: its kind comes
/// from the C side's return code, which no other thread can take, so the message does not matter.
#[test]
fn a_lost_libvips_message_is_not_a_500() {
    use crate::vips::{ErrorKind, UNKNOWN_ERROR, VipsError};
    // An emptied buffer reads as UNKNOWN_ERROR (see vips::take_error).
    let lost = crate::steps::vips_err(VipsError::new(ErrorKind::Decode, UNKNOWN_ERROR));
    assert_eq!(lost.status(), 422, "{lost:?}");
    let starved = crate::steps::vips_err(VipsError::new(
        ErrorKind::Decode,
        "vips2png: unable to write to target target",
    ));
    assert_eq!(starved.status(), 422, "{starved:?}");
    let encoder = crate::steps::vips_err(VipsError::new(
        ErrorKind::Encode,
        "vips2jpeg: out of order read",
    ));
    assert_eq!(encoder.status(), 500, "{encoder:?}");
    // The text is never read: a decoder's words on an internal failure are still ours.
    let internal = crate::steps::vips_err(VipsError::new(
        ErrorKind::Internal,
        "VipsJpeg: Premature end of input file",
    ));
    assert_eq!(internal.status(), 500, "{internal:?}");
    let limits = crate::steps::vips_err(VipsError::new(ErrorKind::Limits, UNKNOWN_ERROR));
    assert!(matches!(limits, TransformError::TooLarge(_)), "{limits:?}");
}

/// The race itself: another thread empties libvips's error buffer over and over while sources
/// whose pixels are corrupt (found only when a later step reads them) fail here. Every failure
/// is still the data's (422), whatever message was left; and a failure of ours is still ours
/// (when its message was lost, the text rules used to call it the data's).
#[test]
fn a_failure_is_classified_while_another_thread_empties_the_error_buffer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    init();
    let tiff = Bytes::from_static(include_bytes!("corrupt_deflate.tif"));
    let full = photo_jpeg();
    // 60 %: past the header, before the end of the scan (jpeg.c's direct decode stops there).
    let cut = full.slice(..full.len() * 6 / 10);
    let stop = AtomicBool::new(false);
    /// Stops the other thread however this one leaves the scope (a failed assertion included).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                crate::vips::clear_errors();
            }
        });
        let _stop = Stop(&stop);
        for _ in 0..100 {
            let err = run(&tiff, Format::Jpeg, |o| o.width = 16).expect_err("corrupt");
            assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
            let err = run(&cut, Format::Png, |_| {}).expect_err("truncated");
            assert!(matches!(err, TransformError::Undecodable(_)), "{err:?}");
            // An area outside the image: libvips refuses it, our fault.
            let err = quadrant(8, 8)
                .extract(4, 4, 8, 8)
                .expect_err("out of bounds");
            assert_eq!(crate::steps::vips_err(err).status(), 500);
        }
    });
}

#[test]
fn text_and_html_are_not_images() {
    for body in [
        &b"<!DOCTYPE html><html><body>Not found</body></html>"[..],
        b"hello",
        b"",
    ] {
        let err = run(&Bytes::copy_from_slice(body), Format::Jpeg, |_| {}).expect_err("text");
        assert_eq!(err, TransformError::NotAnImage);
        assert_eq!(err.status(), 415);
    }
}

#[test]
fn svg_is_refused() {
    let svg = Bytes::from_static(
        b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
    );
    let err = run(&svg, Format::Png, |_| {}).expect_err("svg");
    assert_eq!(err, TransformError::FormatNotAllowed("svg"));
    assert_eq!(err.status(), 415);
}

#[test]
fn decompression_bomb_is_refused_from_the_header() {
    let bomb = png_header_only(20000, 20000);
    let started = Instant::now();
    let err = run(&bomb, Format::Jpeg, |_| {}).expect_err("bomb");
    assert!(matches!(err, TransformError::TooLarge(_)), "{err:?}");
    assert_eq!(err.status(), 422);
    // 400 MP were never decoded
    assert!(started.elapsed().as_millis() < 1000);
    // the probe reads the header only, too
    let probe = pipeline::probe(&bomb).expect("header");
    assert_eq!((probe.width, probe.height), (20000, 20000));
}

#[test]
fn resolution_limits_from_settings_and_options() {
    let src = quadrant_png(100, 100);
    let strict = EngineSettings {
        max_src_resolution: 9_999,
        ..settings()
    };
    let err = run_with(&strict, &src, Format::Png, |_| {}).expect_err("limit");
    assert!(matches!(err, TransformError::TooLarge(_)));
    // the URL's `msr` overrides the engine's limit
    run_with(&strict, &src, Format::Png, |o| {
        o.max_src_resolution = Some(10_000)
    })
    .expect("allowed by msr");
    // animations count every frame processed…
    let anim = animation(100, 100, Saver::Gif);
    let err = run_with(
        &EngineSettings {
            max_src_resolution: 25_000,
            ..settings()
        },
        &anim,
        Format::Gif,
        |_| {},
    )
    .expect_err("3 frames of 10k");
    assert!(matches!(err, TransformError::TooLarge(_)));
    // …unless a per-frame limit is set
    let per_frame = EngineSettings {
        max_src_resolution: 25_000,
        max_animation_frame_resolution: 10_000,
        ..settings()
    };
    run_with(&per_frame, &anim, Format::Gif, |_| {}).expect("per-frame limit");
    let err = run_with(&per_frame, &anim, Format::Gif, |o| {
        o.max_animation_frame_resolution = Some(9_999);
    })
    .expect_err("frame too big");
    assert!(matches!(err, TransformError::TooLarge(_)));
}

#[test]
fn disabled_output_format_is_refused() {
    let only_jpeg = EngineSettings {
        formats: vec![Format::Jpeg],
        ..settings()
    };
    let err =
        run_with(&only_jpeg, &quadrant_png(8, 8), Format::Webp, |_| {}).expect_err("webp off");
    assert_eq!(err, TransformError::OutputNotEnabled("webp"));
    let err = run(&quadrant_png(8, 8), Format::Svg, |_| {}).expect_err("svg out");
    assert_eq!(err, TransformError::OutputNotEnabled("svg"));
}
