//! jpeg.c's error paths free what they allocated. libjpeg reports an error by longjmp out of
//! the middle of a decode or an encode; whatever was allocated by then (the decoded pixels, the
//! encoder's output buffer) must be released on that path too.
//!
//! Each failing path runs many times; the heap in use (glibc's `mallinfo2`, all arenas) must
//! not grow with the count. This file is its own test binary with one test, so nothing else
//! allocates meanwhile. The encoder's output buffer leaked on this path before jpeg.c had its
//! own destination manager: 4 KiB per call (libjpeg's `jpeg_mem_dest` block), 8 MB over this
//! test, against a bound of 1 MiB. Under valgrind, whose allocator `mallinfo2` does not see,
//! `valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1` on this
//! binary reports such blocks as definitely lost.

// mallinfo2 is glibc's.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use bytes::Bytes;
use imgforge_vips::{ErrorKind, Image, LoadOptions, Loader, Saver};

const ROUNDS: usize = 2000;
const BOUND: usize = 1 << 20;

fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 takes no arguments and only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

/// Runs `f` `ROUNDS` times after a warm-up and returns how much the heap grew.
fn growth(mut f: impl FnMut()) -> usize {
    for _ in 0..100 {
        f();
    }
    let before = heap_in_use();
    for _ in 0..ROUNDS {
        f();
    }
    heap_in_use().saturating_sub(before)
}

/// A greyscale JPEG with detail, encoded by libvips.
fn jpeg(width: u32, height: u32) -> Bytes {
    let px: Vec<u8> = (0..width * height)
        .map(|i| ((i % width) ^ (i / width)) as u8)
        .collect();
    let img = Image::from_pixels(&px, width, height, 1).expect("pixels");
    img.save(Saver::Jpeg { progressive: false }, 90)
        .expect("encode")
}

#[test]
fn libjpeg_error_paths_do_not_leak() {
    imgforge_vips::init().expect("libvips initialises");

    // Encode: one pixel row wider than a JPEG may be. libjpeg refuses it in
    // jpeg_start_compress, after the output buffer exists.
    let wide = Image::from_pixels(&vec![128; 65_501], 65_501, 1, 1).expect("pixels");
    let encode = growth(|| {
        let err = wide
            .save(Saver::Jpeg { progressive: false }, 80)
            .expect_err("too wide for JPEG");
        assert_eq!(err.kind, ErrorKind::Limits, "{err:?}");
    });

    // Decode: a JPEG cut in the middle of its scan. jpeg.c stops at libjpeg's warning, after
    // the pixel buffer exists; both the scaled and the full-size decode.
    let full = jpeg(512, 256);
    let cut = full.slice(..full.len() / 2);
    let header = Image::load(&cut, LoadOptions::new(Loader::Jpeg)).expect("header parses");
    let decode = growth(|| {
        for shrink in [1, 8] {
            let err = Image::decode_jpeg(&cut, shrink, &header).expect_err("truncated");
            assert_eq!(err.kind, ErrorKind::Decode, "{err:?}");
        }
    });

    // Decode: garbage where the frame header should be: libjpeg's error_exit before any pixel.
    let mut broken = full.to_vec();
    for b in broken.iter_mut().skip(2).take(200) {
        *b = 0xFF;
    }
    let broken = Bytes::from(broken);
    let garbage = growth(|| {
        assert!(Image::decode_jpeg(&broken, 1, &header).is_err());
    });

    assert!(
        encode < BOUND && decode < BOUND && garbage < BOUND,
        "heap grew over {ROUNDS} failures: encode {encode} B, truncated decode {decode} B, \
         garbage decode {garbage} B"
    );
}
