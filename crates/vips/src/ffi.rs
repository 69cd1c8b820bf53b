//! `extern "C"` declarations of `glue.c` (see `glue.h` for the contract:
//! 0 = success, -1 = failure with the message in libvips's error buffer;
//! output images are new references).

use std::ffi::{c_char, c_double, c_int, c_void};

/// libvips's `VipsImage`, only ever handled by pointer.
#[repr(C)]
pub(crate) struct VipsImage {
    _private: [u8; 0],
}

/// `ifg_jpeg_decode`: the source needs libvips's own loader (glue.h IFG_JPEG_FALLBACK).
pub(crate) const JPEG_FALLBACK: c_int = 1;
/// `ifg_webp_encode`: the image needs libvips's saver (glue.h IFG_WEBP_FALLBACK).
#[cfg(any(test, feature = "test-support"))]
pub(crate) const WEBP_FALLBACK: c_int = 1;
/// `ifg_resample_down`: the image needs vips_resize (glue.h IFG_RESAMPLE_FALLBACK).
#[cfg(any(test, feature = "test-support"))]
pub(crate) const RESAMPLE_FALLBACK: c_int = 1;
pub(crate) const LOAD_JPEG: c_int = 1;
pub(crate) const LOAD_PNG: c_int = 2;
pub(crate) const LOAD_WEBP: c_int = 3;
pub(crate) const LOAD_GIF: c_int = 4;
pub(crate) const LOAD_HEIF: c_int = 5;
pub(crate) const LOAD_TIFF: c_int = 6;

pub(crate) const SAVE_JPEG: c_int = 1;
pub(crate) const SAVE_PNG: c_int = 2;
pub(crate) const SAVE_WEBP: c_int = 3;
pub(crate) const SAVE_GIF: c_int = 4;
pub(crate) const SAVE_AVIF: c_int = 5;

pub(crate) type ReleaseFn = unsafe extern "C" fn(image: *mut VipsImage, user: *mut c_void);

unsafe extern "C" {
    pub(crate) fn ifg_init() -> c_int;
    pub(crate) fn ifg_heif_available() -> c_int;
    pub(crate) fn ifg_error_take() -> *mut c_char;
    pub(crate) fn ifg_error_clear();
    pub(crate) fn ifg_free(p: *mut c_void);
    pub(crate) fn ifg_unref(image: *mut VipsImage);
    pub(crate) fn ifg_thread_shutdown();
    pub(crate) fn ifg_tracked_mem() -> usize;
    pub(crate) fn ifg_tracked_mem_highwater() -> usize;
    pub(crate) fn ifg_tracked_allocs() -> c_int;

    pub(crate) fn ifg_jpeg_decode(
        buf: *const c_void,
        len: usize,
        shrink: c_int,
        header: *mut VipsImage,
        out: *mut *mut VipsImage,
    ) -> c_int;
    pub(crate) fn ifg_load(
        buf: *const c_void,
        len: usize,
        format: c_int,
        shrink: c_int,
        scale: c_double,
        pages: c_int,
        sequential: c_int,
        release: ReleaseFn,
        user: *mut c_void,
        out: *mut *mut VipsImage,
    ) -> c_int;
    pub(crate) fn ifg_new_from_pixels(
        data: *const c_void,
        len: usize,
        width: c_int,
        height: c_int,
        bands: c_int,
        out: *mut *mut VipsImage,
    ) -> c_int;

    pub(crate) fn ifg_width(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_height(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_bands(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_has_alpha(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_page_height(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_n_pages(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_is_animated(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_orientation(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_delays(image: *mut VipsImage, out: *mut c_int, max: c_int) -> c_int;
    pub(crate) fn ifg_loop(image: *mut VipsImage) -> c_int;
    pub(crate) fn ifg_getpoint(
        image: *mut VipsImage,
        x: c_int,
        y: c_int,
        out: *mut c_double,
        max: c_int,
    ) -> c_int;
    pub(crate) fn ifg_set_orientation(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        orientation: c_int,
    ) -> c_int;
    pub(crate) fn ifg_copy_memory(input: *mut VipsImage, out: *mut *mut VipsImage) -> c_int;
    pub(crate) fn ifg_to_processing(input: *mut VipsImage, out: *mut *mut VipsImage) -> c_int;
    pub(crate) fn ifg_resize(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        hscale: c_double,
        vscale: c_double,
    ) -> c_int;
    pub(crate) fn ifg_extract(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        left: c_int,
        top: c_int,
        width: c_int,
        height: c_int,
    ) -> c_int;
    pub(crate) fn ifg_smartcrop(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        width: c_int,
        height: c_int,
    ) -> c_int;
    pub(crate) fn ifg_rot(input: *mut VipsImage, out: *mut *mut VipsImage, angle: c_int) -> c_int;
    pub(crate) fn ifg_flip(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        horizontal: c_int,
    ) -> c_int;
    pub(crate) fn ifg_filters(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        blur: c_double,
        sharpen: c_double,
        pixelate: c_int,
    ) -> c_int;
    pub(crate) fn ifg_embed(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        x: c_int,
        y: c_int,
        width: c_int,
        height: c_int,
    ) -> c_int;
    pub(crate) fn ifg_flatten(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        r: c_double,
        g: c_double,
        b: c_double,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ifg_find_trim(
        input: *mut VipsImage,
        threshold: c_double,
        use_color: c_int,
        r: c_double,
        g: c_double,
        b: c_double,
        left: *mut c_int,
        top: *mut c_int,
        width: *mut c_int,
        height: *mut c_int,
    ) -> c_int;
    pub(crate) fn ifg_replicate(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        width: c_int,
        height: c_int,
        centered: c_int,
    ) -> c_int;
    pub(crate) fn ifg_composite(
        input: *mut VipsImage,
        overlay: *mut VipsImage,
        out: *mut *mut VipsImage,
        x: c_int,
        y: c_int,
        opacity: c_double,
    ) -> c_int;
    pub(crate) fn ifg_arrayjoin(
        input: *mut *mut VipsImage,
        n: c_int,
        out: *mut *mut VipsImage,
    ) -> c_int;
    pub(crate) fn ifg_set_animation(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        page_height: c_int,
        delays: *const c_int,
        n: c_int,
        loop_count: c_int,
    ) -> c_int;
    pub(crate) fn ifg_remove_animation(input: *mut VipsImage, out: *mut *mut VipsImage) -> c_int;
    pub(crate) fn ifg_finish(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        strip: c_int,
        keep_copyright: c_int,
        keep_profile: c_int,
        animated: c_int,
        rotated: c_int,
    ) -> c_int;

    pub(crate) fn ifg_save(
        input: *mut VipsImage,
        format: c_int,
        quality: c_int,
        option: c_int,
        buf: *mut *mut c_void,
        len: *mut usize,
    ) -> c_int;

    /// jpeg.c's direct encoder, or JPEG_FALLBACK (tests compare it with libvips's).
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_jpeg_encode(
        input: *mut VipsImage,
        quality: c_int,
        progressive: c_int,
        buf: *mut *mut c_void,
        len: *mut usize,
    ) -> c_int;

    /// libvips's jpegsave, as ifg_save calls it when jpeg.c falls back.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_save_libvips_jpeg(
        input: *mut VipsImage,
        quality: c_int,
        progressive: c_int,
        buf: *mut *mut c_void,
        len: *mut usize,
    ) -> c_int;

    /// webp.c's direct encoder, or WEBP_FALLBACK (tests compare it with libvips's).
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_webp_encode(
        input: *mut VipsImage,
        quality: c_int,
        buf: *mut *mut c_void,
        len: *mut usize,
    ) -> c_int;

    /// resample.c's downscale, or RESAMPLE_FALLBACK (tests compare it with vips_resize).
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_resample_down(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        hscale: c_double,
        vscale: c_double,
    ) -> c_int;

    /// vips_resize, as ifg_resize calls it when resample.c falls back.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_resize_libvips(
        input: *mut VipsImage,
        out: *mut *mut VipsImage,
        hscale: c_double,
        vscale: c_double,
    ) -> c_int;

    /// Every pixel of an image, g_malloc'd.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_pixels(input: *mut VipsImage, len: *mut usize) -> *mut c_void;

    /// libvips's webpsave, as ifg_save calls it when webp.c falls back.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn ifg_save_libvips_webp(
        input: *mut VipsImage,
        quality: c_int,
        buf: *mut *mut c_void,
        len: *mut usize,
    ) -> c_int;
}
