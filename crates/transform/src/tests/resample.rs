//! The engine's own downscale (vips/resample.c) must give what vips_resize gives — same size,
//! the same picture within rounding — and leave to libvips every image it does not handle.

use super::fixtures::*;
use crate::vips::{Image, Via};

/// A smooth picture with some detail, in memory: what a decoded photo looks like to a resampler.
fn photo(w: u32, h: u32, bands: u32) -> Image {
    let mut px = Vec::with_capacity((w * h * bands) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let v = [
                128.0 + 100.0 * (fx / 17.0).sin() * (fy / 23.0).cos(),
                fx * 255.0 / f64::from(w),
                128.0 + 120.0 * ((fx + fy) / 5.0).sin(),
            ];
            px.extend(v[..bands as usize].iter().map(|v| v.round() as u8));
        }
    }
    image(&px, w, h, bands).copy_memory().expect("memory image")
}

/// Lanczos-3 in floating point with no intermediate rounding: what both resamplers approximate.
/// Same geometry as vips_resize (round(size * scale), centres at i + 0.5); taps outside the image
/// are dropped and the rest renormalised.
fn exact(px: &[u8], w: usize, h: usize, bands: usize, hs: f64, vs: f64) -> Vec<f64> {
    fn lanczos3(x: f64) -> f64 {
        let x = x.abs();
        if x < 1e-9 {
            return 1.0;
        }
        if x >= 3.0 {
            return 0.0;
        }
        let p = std::f64::consts::PI * x;
        3.0 * p.sin() * (p / 3.0).sin() / (p * p)
    }
    // For each output sample: (first input, weights).
    fn weights(n: usize, out: usize) -> Vec<(usize, Vec<f64>)> {
        let scale = n as f64 / out as f64;
        let support = 3.0 * scale;
        (0..out)
            .map(|o| {
                let centre = (o as f64 + 0.5) * scale;
                let lo = ((centre - support - 0.5).ceil().max(0.0)) as usize;
                let hi = ((centre + support - 0.5).floor() as usize).min(n - 1);
                let w: Vec<f64> = (lo..=hi)
                    .map(|i| lanczos3((i as f64 + 0.5 - centre) / scale))
                    .collect();
                let sum: f64 = w.iter().sum();
                (lo, w.into_iter().map(|v| v / sum).collect())
            })
            .collect()
    }
    let (ow, oh) = (
        ((w as f64 * hs + 0.5) as usize).max(1),
        ((h as f64 * vs + 0.5) as usize).max(1),
    );
    let (wv, wh) = (weights(h, oh), weights(w, ow));
    let mut mid = vec![0.0; w * oh * bands];
    for (y, (lo, ws)) in wv.iter().enumerate() {
        for (k, c) in ws.iter().enumerate() {
            let row = &px[(lo + k) * w * bands..][..w * bands];
            for (m, p) in mid[y * w * bands..][..w * bands].iter_mut().zip(row) {
                *m += c * f64::from(*p);
            }
        }
    }
    let mut out = vec![0.0; ow * oh * bands];
    for y in 0..oh {
        for (x, (lo, ws)) in wh.iter().enumerate() {
            for b in 0..bands {
                out[(y * ow + x) * bands + b] = ws
                    .iter()
                    .enumerate()
                    .map(|(k, c)| c * mid[(y * w + lo + k) * bands + b])
                    .sum::<f64>()
                    .clamp(0.0, 255.0);
            }
        }
    }
    out
}

/// Mean and largest distance of 8-bit pixels from the exact result.
fn distance(px: &[u8], exact: &[f64]) -> (f64, f64) {
    assert_eq!(px.len(), exact.len());
    let d: Vec<f64> = px
        .iter()
        .zip(exact)
        .map(|(p, e)| (f64::from(*p) - e).abs())
        .collect();
    (
        d.iter().sum::<f64>() / d.len() as f64,
        d.iter().cloned().fold(0.0, f64::max),
    )
}

fn ours(img: &Image, h: f64, v: f64) -> Image {
    img.resize_by(h, v, Via::Direct)
        .expect("resample")
        .expect("handled by resample.c")
}

fn libvips(img: &Image, h: f64, v: f64) -> Image {
    img.resize_by(h, v, Via::Libvips)
        .expect("vips_resize")
        .expect("libvips never falls back")
}

#[test]
fn resample_is_as_close_to_exact_lanczos_as_vips_resize() {
    init();
    // (size, hscale, vscale): the medium and large thumbnails after JPEG shrink-on-load, odd
    // sizes, one axis kept, and near the smallest scale that stays here.
    let cases = [
        ((480, 300), 400.0 / 480.0, 250.0 / 300.0),
        ((754, 424), 400.0 / 754.0, 400.0 / 754.0),
        ((301, 157), 0.26, 0.9),
        ((500, 200), 1.0, 0.5),
        ((200, 500), 0.7, 1.0),
    ];
    for bands in [1, 3] {
        for ((w, h), hs, vs) in cases {
            let img = photo(w, h, bands);
            let (a, b) = (ours(&img, hs, vs), libvips(&img, hs, vs));
            let what = format!("{w}x{h} bands {bands} scale {hs:.3}x{vs:.3}");
            assert_eq!(
                (a.width(), a.height(), a.bands()),
                (b.width(), b.height(), b.bands()),
                "{what}: vips_resize's size"
            );
            let src = img.pixels().expect("source");
            let reference = exact(&src, w as usize, h as usize, bands as usize, hs, vs);
            let (mean, max) = distance(&a.pixels().expect("ours"), &reference);
            let (vips_mean, _) = distance(&b.pixels().expect("libvips"), &reference);
            // Two roundings to 8 bits (after each pass) and 14-bit weights: within one level.
            assert!(mean < 0.5 && max <= 2.0, "{what}: ours {mean} / {max}");
            assert!(
                mean <= vips_mean + 0.05,
                "{what}: ours {mean}, vips_resize {vips_mean}"
            );
        }
    }
}

#[test]
fn the_engine_resize_goes_through_resample() {
    // What the pipeline does with a directly decoded JPEG: processing space, then resize.
    let img = photo(480, 300, 3)
        .to_processing()
        .expect("processing space");
    let (h, v) = (400.0 / 480.0, 250.0 / 300.0);
    let engine = img.resize(h, v).expect("resize").pixels().expect("pixels");
    assert_eq!(engine, ours(&img, h, v).pixels().expect("ours"));
    assert_ne!(engine, libvips(&img, h, v).pixels().expect("libvips"));
}

#[test]
fn a_flat_colour_stays_exactly_that_colour() {
    let img = solid(97, 61, [120, 200, 30])
        .copy_memory()
        .expect("memory image");
    for (hs, vs) in [(0.5, 0.5), (0.83, 0.61), (0.26, 1.0)] {
        let out = ours(&img, hs, vs);
        let px = out.pixels().expect("pixels");
        assert!(
            px.chunks(3).all(|p| p == [120, 200, 30]),
            "scale {hs}x{vs}: weights sum to one, edges included"
        );
    }
}

#[test]
fn resample_keeps_the_metadata() {
    let img = photo(200, 100, 3)
        .with_orientation(6)
        .and_then(|i| i.copy_memory())
        .expect("memory image with orientation");
    let out = ours(&img, 0.5, 0.5);
    assert_eq!((out.width(), out.height(), out.orientation()), (100, 50, 6));
}

#[test]
fn what_resample_does_not_handle_goes_to_libvips() {
    init();
    let rgb = photo(120, 80, 3);
    let fallback =
        |img: &Image, h: f64, v: f64| img.resize_by(h, v, Via::Direct).expect("no error");
    // alpha is resampled premultiplied by libvips
    for bands in [2, 4] {
        let alpha = gradient(120, 80, bands).copy_memory().expect("memory");
        assert!(
            fallback(&alpha, 0.5, 0.5).is_none(),
            "{bands} bands with alpha"
        );
    }
    // pixels not in memory yet (a lazy pipeline): libvips streams it
    let lazy = rgb.with_orientation(1).expect("lazy copy");
    assert!(fallback(&lazy, 0.5, 0.5).is_none(), "lazy input");
    assert!(fallback(&rgb, 1.5, 1.0).is_none(), "enlarging");
    assert!(fallback(&rgb, 0.25, 0.5).is_none(), "box-shrink scales");
    assert!(fallback(&rgb, f64::NAN, 0.5).is_none(), "not a number");
    let tiny = photo(5, 5, 3);
    assert!(
        fallback(&tiny, 0.26, 0.26).is_none(),
        "5 px -> 1: a ratio of 5 after rounding"
    );
    assert!(fallback(&rgb, 1.0, 1.0).is_none(), "nothing to do");
    // and resize itself still answers all of them
    for img in [&gradient(120, 80, 4), &lazy] {
        let out = img.resize(0.5, 0.25).expect("resize");
        assert_eq!((out.width(), out.height()), (60, 20));
    }
}
