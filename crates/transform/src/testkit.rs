//! Test support, public so that integration tests (and benches) can make fixture images with
//! the same libvips binding and look at results. Not part of the product API; runs libvips on
//! the calling thread.

use bytes::Bytes;

use super::vips::{self, Access, Image, LoadOptions, Loader, Pages, Saver};
use super::{Format, sniff};

/// What a decoded image is.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub format: Format,
    pub width: u32,
    /// Height of one frame.
    pub height: u32,
    pub bands: u32,
    pub pages: u32,
}

fn init() {
    if let Err(e) = vips::init() {
        panic!("libvips does not initialise: {e}");
    }
}

fn saver(format: Format) -> Saver {
    match format {
        Format::Jpeg => Saver::Jpeg { progressive: false },
        Format::Png => Saver::Png,
        Format::Webp => Saver::Webp,
        Format::Gif => Saver::Gif,
        Format::Avif => Saver::Avif { speed: 9 },
        other => panic!("testkit cannot encode {other:?}"),
    }
}

/// Encodes raw 8-bit pixels (1–4 bands) as `format`.
pub fn encode(px: &[u8], width: u32, height: u32, bands: u32, format: Format) -> Bytes {
    init();
    let img = Image::from_pixels(px, width, height, bands).expect("pixels");
    img.save(saver(format), 95).expect("encode")
}

/// w × h RGB: red top-left, green top-right, blue bottom-left, yellow bottom-right.
pub fn quadrant_pixels(w: u32, h: u32) -> Vec<u8> {
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

/// A `frames`-frame animation (frames w × h, solid red, green, blue, … 100 ms each).
pub fn animation(w: u32, h: u32, frames: u32, format: Format) -> Bytes {
    init();
    let colours = [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]];
    let images: Vec<Image> = (0..frames)
        .map(|i| {
            let c = colours[i as usize % colours.len()];
            let px: Vec<u8> = (0..w * h).flat_map(|_| c).collect();
            Image::from_pixels(&px, w, h, 3).expect("pixels")
        })
        .collect();
    let strip = Image::arrayjoin(&images).expect("join");
    let delays = vec![100; frames as usize];
    let anim = strip.set_animation(h, &delays, 0).expect("anim");
    anim.save(saver(format), 95).expect("encode")
}

fn load(bytes: &[u8]) -> (Format, Image) {
    init();
    let bytes = Bytes::copy_from_slice(bytes);
    let format = sniff(&bytes)
        .unwrap_or_else(|| panic!("not an image: {:?}", &bytes[..bytes.len().min(16)]));
    let loader = match format {
        Format::Jpeg => Loader::Jpeg,
        Format::Png => Loader::Png,
        Format::Webp => Loader::Webp,
        Format::Gif => Loader::Gif,
        Format::Avif | Format::Heic => Loader::Heif,
        other => panic!("unexpected format {other:?}"),
    };
    (
        format,
        Image::load(
            &bytes,
            LoadOptions {
                pages: Pages::All,
                access: Access::Random,
                ..LoadOptions::new(loader)
            },
        )
        .expect("decode"),
    )
}

/// Decodes an encoded image and reports its facts (all frames loaded).
pub fn decode(bytes: &[u8]) -> Decoded {
    let (format, img) = load(bytes);
    Decoded {
        format,
        width: img.width(),
        height: img.page_height(),
        bands: img.bands(),
        pages: img.n_pages(),
    }
}

/// The band values of one pixel of an encoded image.
pub fn pixel(bytes: &[u8], x: u32, y: u32) -> Vec<f64> {
    load(bytes).1.getpoint(x, y).expect("getpoint")
}

/// A PNG whose header declares `w` × `h` but carries almost no data: a decompression bomb's
/// header, with valid CRCs.
pub fn png_header_only(w: u32, h: u32) -> Bytes {
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
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    Bytes::from(out)
}

/// Re-encodes `bytes` as JPEG with the EXIF orientation tag set (1–8), for auto-rotate tests.
pub fn with_orientation(bytes: &[u8], orientation: u8) -> Bytes {
    let (_, img) = load(bytes);
    let tagged = img.with_orientation(orientation).expect("orientation");
    tagged.save(saver(Format::Jpeg), 95).expect("encode")
}
