//! Fixture images made with our own binding, and helpers to look at results.

use bytes::Bytes;

use crate::pipeline;
use crate::vips::{self, Access, Image, LoadOptions, Loader, Pages, Saver};
use crate::{EngineSettings, Format, Job, Output, TransformError};
use imgforge_imgproxy::ProcessingOptions;

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
    img.save(saver, 95).expect("encode")
}

pub(super) fn png(img: &Image) -> Bytes {
    save(img, Saver::Png)
}

pub(super) use crate::testkit::{png_header_only, quadrant_pixels};

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
    let loader = match crate::sniff(&bytes) {
        Some(Format::Jpeg) => Loader::Jpeg,
        Some(Format::Png) => Loader::Png,
        Some(Format::Webp) => Loader::Webp,
        Some(Format::Gif) => Loader::Gif,
        Some(Format::Avif) => Loader::Heif,
        other => panic!("unexpected output {other:?}"),
    };
    Image::load(
        &bytes,
        LoadOptions {
            pages: Pages::All,
            access: Access::Random,
            ..LoadOptions::new(loader)
        },
    )
    .expect("decode")
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

/// A `w`×`h` image of 1–4 bands with gradients in every band (detail for codecs and scaled
/// decodes to get wrong).
pub(super) fn gradient(w: u32, h: u32, bands: u32) -> Image {
    let mut px = Vec::with_capacity((w * h * bands) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x * y) % 256) as u8,
                (255 - x * 255 / w) as u8,
            ];
            px.extend_from_slice(&v[..bands as usize]);
        }
    }
    image(&px, w, h, bands)
}
