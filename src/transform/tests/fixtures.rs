//! Fixture images made with our own binding, and helpers to look at results.

use bytes::Bytes;

use crate::imgproxy::ProcessingOptions;
use crate::transform::pipeline;
use crate::transform::vips::{self, Image, Loader, Saver};
use crate::transform::{EngineSettings, Format, Job, Output, TransformError};

pub(super) const RED: [f64; 3] = [255.0, 0.0, 0.0];
pub(super) const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
pub(super) const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
pub(super) const YELLOW: [f64; 3] = [255.0, 255.0, 0.0];
pub(super) const WHITE: [f64; 3] = [255.0, 255.0, 255.0];
pub(super) const BLACK: [f64; 3] = [0.0, 0.0, 0.0];

pub(super) fn init() {
    vips::init().expect("libvips initialises");
}

/// Settings for tests: animations kept (10 frames).
pub(super) fn settings() -> EngineSettings {
    EngineSettings {
        max_animation_frames: 10,
        ..EngineSettings::default()
    }
}

pub(super) fn image(px: &[u8], w: u32, h: u32, bands: u32) -> Image {
    init();
    Image::from_pixels(px, w, h, bands).expect("pixels")
}

pub(super) fn save(img: &Image, saver: Saver) -> Bytes {
    Bytes::from(img.save(saver, 95).expect("encode"))
}

pub(super) fn png(img: &Image) -> Bytes {
    save(img, Saver::Png)
}

/// w × h RGB: red top-left, green top-right, blue bottom-left, yellow
/// bottom-right.
pub(super) fn quadrant_pixels(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let c: [u8; 3] = match (x < w / 2, y < h / 2) {
                (true, true) => [255, 0, 0],
                (false, true) => [0, 255, 0],
                (true, false) => [0, 0, 255],
                (false, false) => [255, 255, 0],
            };
            px.extend_from_slice(&c);
        }
    }
    px
}

pub(super) fn quadrant(w: u32, h: u32) -> Image {
    image(&quadrant_pixels(w, h), w, h, 3)
}

pub(super) fn quadrant_png(w: u32, h: u32) -> Bytes {
    png(&quadrant(w, h))
}

/// w × h RGBA: left half fully transparent (black), right half opaque red.
pub(super) fn half_transparent_png(w: u32, h: u32) -> Bytes {
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for _ in 0..h {
        for x in 0..w {
            px.extend_from_slice(&if x < w / 2 {
                [0, 0, 0, 0]
            } else {
                [255, 0, 0, 255]
            });
        }
    }
    png(&image(&px, w, h, 4))
}

pub(super) fn solid(w: u32, h: u32, c: [u8; 3]) -> Image {
    let px: Vec<u8> = (0..w * h).flat_map(|_| c).collect();
    image(&px, w, h, 3)
}

/// A 3-frame animation, frames w × h: red, green, blue, 100 ms each.
pub(super) fn animation(w: u32, h: u32, saver: Saver) -> Bytes {
    let frames = [
        solid(w, h, [255, 0, 0]),
        solid(w, h, [0, 255, 0]),
        solid(w, h, [0, 0, 255]),
    ];
    let strip = Image::arrayjoin(&frames).expect("join");
    let anim = strip.set_animation(h, &[100, 100, 100], 0).expect("anim");
    save(&anim, saver)
}

/// Decodes a result fully (any format the engine loads).
pub(super) fn decode(bytes: &[u8]) -> Image {
    let bytes = Bytes::copy_from_slice(bytes);
    let loader = match crate::transform::sniff(&bytes) {
        Some(Format::Jpeg) => Loader::Jpeg,
        Some(Format::Png) => Loader::Png,
        Some(Format::Webp) => Loader::Webp,
        Some(Format::Gif) => Loader::Gif,
        Some(Format::Avif) => Loader::Heif,
        other => panic!("unexpected output {other:?}"),
    };
    Image::load(&bytes, loader, 1, 1.0, -1, false).expect("decode")
}

/// RGB(A) of one pixel of an encoded image.
pub(super) fn pixel(bytes: &[u8], x: u32, y: u32) -> Vec<f64> {
    decode(bytes).getpoint(x, y).expect("getpoint")
}

#[track_caller]
pub(super) fn assert_rgb(got: &[f64], want: [f64; 3], tolerance: f64) {
    let ok = got.len() >= 3
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= tolerance);
    assert!(ok, "pixel {got:?} is not {want:?} ± {tolerance}");
}

/// Runs a transform synchronously with options set by `f`.
pub(super) fn run(
    source: &Bytes,
    format: Format,
    f: impl FnOnce(&mut ProcessingOptions),
) -> Result<Output, TransformError> {
    run_with(&settings(), source, format, f)
}

pub(super) fn run_with(
    settings: &EngineSettings,
    source: &Bytes,
    format: Format,
    f: impl FnOnce(&mut ProcessingOptions),
) -> Result<Output, TransformError> {
    init();
    let mut o = ProcessingOptions::default();
    f(&mut o);
    pipeline::transform(settings, Job::new(source.clone(), o).format(format), None)
}

/// Runs a transform that must succeed.
#[track_caller]
pub(super) fn ok(source: &Bytes, format: Format, f: impl FnOnce(&mut ProcessingOptions)) -> Output {
    match run(source, format, f) {
        Ok(out) => out,
        Err(e) => panic!("transform failed: {e}"),
    }
}

/// A PNG whose IHDR declares `w` × `h` with one tiny IDAT: a decompression
/// bomb's header, with a valid CRC.
pub(super) fn png_header_only(w: u32, h: u32) -> Bytes {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    Bytes::from(out)
}
