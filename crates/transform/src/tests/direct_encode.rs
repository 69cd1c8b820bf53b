//! The direct encoders (vips/jpeg.c for JPEG, vips/webp.c for WebP) must write what libvips's
//! savers write, and leave to libvips whatever they do not handle.

use super::fixtures::*;
use crate::Format;
use crate::vips::{Saver, Via};

/// The chunks of a RIFF/WebP file, as (fourcc, payload).
fn chunks(webp: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&webp[..4], b"RIFF");
    assert_eq!(&webp[8..12], b"WEBP");
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= webp.len() {
        let fourcc = String::from_utf8_lossy(&webp[at..at + 4]).into_owned();
        let len = u32::from_le_bytes(webp[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        out.push((fourcc, webp[at + 8..at + 8 + len].to_vec()));
        at += 8 + len + (len & 1);
    }
    assert_eq!(at, webp.len(), "chunks cover the file");
    out
}

/// The image payload: the VP8 bitstream, and the ALPH chunk when there is one.
fn bitstream(webp: &[u8]) -> Vec<(String, Vec<u8>)> {
    chunks(webp)
        .into_iter()
        .filter(|(c, _)| c == "VP8 " || c == "ALPH")
        .collect()
}

#[test]
fn direct_encode_writes_libvips_bitstream() {
    init();
    for (bands, q) in [(3, 80), (4, 79), (3, 30)] {
        let img = gradient(301, 157, bands);
        let direct = img
            .save_by(Saver::Webp, Via::Direct, q)
            .expect("direct encode")
            .expect("handled directly");
        let vips = img
            .save_by(Saver::Webp, Via::Libvips, q)
            .expect("libvips encode")
            .expect("libvips never falls back");
        assert_eq!(
            bitstream(&direct),
            bitstream(&vips),
            "bands {bands} q {q}: same VP8 (and ALPH) payload"
        );
        let decoded = decode(&direct);
        assert_eq!(
            (decoded.width(), decoded.height(), decoded.bands()),
            (301, 157, bands)
        );
    }
}

#[test]
fn direct_jpeg_is_byte_for_byte_libvips() {
    init();
    // 4:2:0 below Q 90, 4:4:4 from it; greyscale; progressive scans
    for (bands, q, progressive) in [
        (3, 80, false),
        (3, 95, false),
        (1, 80, false),
        (3, 75, true),
    ] {
        let img = gradient(301, 157, bands);
        let saver = Saver::Jpeg { progressive };
        let direct = img
            .save_by(saver, Via::Direct, q)
            .expect("direct encode")
            .expect("handled directly");
        let vips = img
            .save_by(saver, Via::Libvips, q)
            .expect("libvips encode")
            .expect("libvips never falls back");
        assert!(
            direct == vips,
            "bands {bands} q {q} progressive {progressive}: {} vs {} bytes",
            direct.len(),
            vips.len()
        );
        assert_eq!(decode(&direct).bands(), bands);
    }
    let tagged = decode(&save(
        &gradient(64, 32, 3)
            .with_orientation(6)
            .expect("orientation"),
        Saver::Jpeg { progressive: false },
    ));
    let saver = Saver::Jpeg { progressive: false };
    assert!(
        tagged
            .save_by(saver, Via::Direct, 80)
            .expect("encode")
            .is_none()
    );
    let rgba = gradient(64, 32, 4);
    assert!(
        rgba.save_by(saver, Via::Direct, 80)
            .expect("encode")
            .is_none()
    );
}

#[test]
fn metadata_grey_and_animation_go_to_libvips() {
    init();
    let grey = gradient(64, 32, 1);
    assert!(
        grey.save_by(Saver::Webp, Via::Direct, 80)
            .expect("encode")
            .is_none()
    );
    let tagged = decode(&save(
        &gradient(64, 32, 3)
            .with_orientation(6)
            .expect("orientation"),
        Saver::Jpeg { progressive: false },
    ));
    assert!(
        tagged
            .save_by(Saver::Webp, Via::Direct, 80)
            .expect("encode")
            .is_none()
    );
    // through the pipeline: metadata kept on request ends up in the WebP container
    let src = save(
        &gradient(64, 32, 3)
            .with_orientation(3)
            .expect("orientation"),
        Saver::Jpeg { progressive: false },
    );
    let kept = ok(&src, Format::Webp, |o| {
        o.strip_metadata = false;
        o.auto_rotate = false;
    });
    assert!(chunks(&kept.bytes).iter().any(|(c, _)| c == "EXIF"));
    assert_eq!(decode(&kept.bytes).orientation(), 3);
    let frames = animation(32, 16, Saver::Webp);
    let out = ok(&frames, Format::Webp, |o| o.max_animation_frames = Some(3));
    assert_eq!(decode(&out.bytes).n_pages(), 3);
}

/// The default (`strip_metadata` and `keep_copyright` on) leaves no EXIF block when the source
/// has no copyright tags: not even the orientation and resolution libvips would write.
#[test]
fn stripped_results_carry_no_exif() {
    let src = save(
        &gradient(64, 32, 3)
            .with_orientation(6)
            .expect("orientation"),
        Saver::Jpeg { progressive: false },
    );
    let webp = ok(&src, Format::Webp, |_| {});
    assert!(
        chunks(&webp.bytes).iter().all(|(c, _)| c == "VP8 "),
        "a plain lossy WebP: {:?}",
        chunks(&webp.bytes)
            .iter()
            .map(|(c, _)| c.clone())
            .collect::<Vec<_>>()
    );
    let jpeg = ok(&src, Format::Jpeg, |_| {});
    assert!(
        !jpeg.bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "no APP1 Exif segment"
    );
    assert_eq!(decode(&jpeg.bytes).orientation(), 1);
}
