/* imgforge's thin binding over libvips (8.13+).
 *
 * libvips's public API is variadic (`NULL`-terminated option lists); Rust
 * cannot call that safely, and a misspelt option is only found at run time.
 * Every function here is non-variadic and spells its options once.
 *
 * Every entry point that can fail returns 0 on success, one of the IFG_ERR_*
 * kinds (< 0) on failure, or IFG_FALLBACK (> 0) where a fast path says so. The
 * kind says what failed; the message in libvips's error buffer (take it with
 * ifg_error_take()) is for logs only: that buffer is process-wide, so another
 * thread may have taken the message or added its own. Output images are new
 * references the caller owns and releases with ifg_unref().
 */
#ifndef IMGFORGE_VIPS_GLUE_H
#define IMGFORGE_VIPS_GLUE_H

#include <stddef.h>
#include <vips/vips.h>

/* The numbers shared with Rust (formats, IFG_FALLBACK, the IFG_ERR_* kinds): one table, codes.h,
 * which build.rs turns into the Rust constants. */
#define IFG_CODE(name, value) IFG_##name = (value),
enum {
#include "codes.h"
};
#undef IFG_CODE

_Static_assert(IFG_ERR_INTERNAL == -1, "a bare `return -1` must mean an internal failure");
_Static_assert(IFG_ERR_DECODE < 0 && IFG_ERR_LIMITS < 0 && IFG_ERR_ENCODE < 0,
    "failures are negative");
_Static_assert(IFG_FALLBACK > 0, "the fallback is neither success nor a failure");

/* What an entry point returns for a failure in its own phase `kind`: IFG_ERR_DECODE instead when
 * the decoder of a source loaded on this thread failed meanwhile (since the last failure or
 * ifg_error_clear() on this thread). libvips decodes lazily: a source's pixels are decoded by
 * whichever later step first reads them, so a decoder fails inside a crop or a save; ifg_load
 * puts a tap on every source that records exactly that. Consumes the record. */
int ifg_fail(int kind);

/* An operation's return: 0 when the libvips call(s) returned 0, else ifg_fail(IFG_ERR_INTERNAL). */
static inline int
ifg_result(int res)
{
  return res ? ifg_fail(IFG_ERR_INTERNAL) : 0;
}

/* For entry points that keep their intermediate images on a local `base` image
 * (vips_object_local_array): on `cond`, releases them and returns an internal failure (or the
 * decode failure behind it: ifg_fail). */
#define IFG_FAIL_IF(cond) \
  do { \
    if (cond) { \
      VIPS_UNREF(base); \
      return ifg_fail(IFG_ERR_INTERNAL); \
    } \
  } while (0)

/* An encoder's output (jpeg.c, webp.c): a g_malloc'd block that grows as the encoder writes.
 * Starts all zero; whoever holds it frees `data` with g_free unless ifg_out_take handed it on. */
typedef struct {
  unsigned char *data;
  size_t len; /* bytes written */
  size_t cap; /* bytes allocated */
} ifg_out;

/* Makes room for `more` bytes after `len` (at least doubling). FALSE when out of memory, the
 * block unchanged. */
gboolean ifg_out_reserve(ifg_out *out, size_t more);
/* Hands the block to an entry point's caller as `*buf` and `*len`, trimmed to the bytes written
 * (what the caller holds, possibly for long in a cache, is exactly the image). */
void ifg_out_take(ifg_out *out, void **buf, size_t *len);

/* Called from the image's "postclose" signal: releases the source buffer. */
typedef void (*ifg_release_fn)(VipsImage *image, void *user);

int ifg_init(void);
int ifg_heif_available(void);
char *ifg_error_take(void);
/* Empties libvips's error buffer and forgets this thread's decode failure (ifg_fail). */
void ifg_error_clear(void);
void ifg_free(void *p);
void ifg_unref(VipsImage *image);
void ifg_thread_shutdown(void);

/* Memory libvips tracks (vips_tracked_get_mem and friends). */
size_t ifg_tracked_mem(void);
size_t ifg_tracked_mem_highwater(void);
int ifg_tracked_allocs(void);

/* Loading. On success the image owns `user` and calls `release` when it is
 * finally closed; on failure ownership stays with the caller. */
/* jpeg.c: decodes a 1-or-3-component JPEG scaled by 1/shrink with libjpeg into a memory image
 * carrying `header`'s metadata. Returns 0, IFG_ERR_DECODE for bad data, IFG_ERR_LIMITS when the
 * decoded image cannot be allocated, or IFG_FALLBACK when the source (CMYK, YCCK) needs libvips's
 * own loader. */
int ifg_jpeg_decode(const void *buf, size_t len, int shrink, VipsImage *header, VipsImage **out);
/* jpeg.c: encodes a single-frame 8-bit sRGB or greyscale image without metadata as jpegsave
 * would. Returns 0, IFG_ERR_ENCODE (IFG_ERR_LIMITS past JPEG's 65500 px), or IFG_FALLBACK when
 * libvips's saver is needed. */
int ifg_jpeg_encode(VipsImage *in, int quality, int progressive, void **buf, size_t *len);
/* jpeg.c: whether the image is wider or taller than a JPEG can be (libjpeg's 65500 px). */
int ifg_jpeg_too_big(VipsImage *in);
/* What ifg_save does for JPEG when jpeg.c falls back: libvips's jpegsave. */
int ifg_save_libvips_jpeg(VipsImage *in, int quality, int progressive, void **buf, size_t *len);

/* webp.c: encodes a single-frame 8-bit sRGB image (3 or 4 bands) without metadata with libwebp
 * as webpsave would. Returns 0, IFG_ERR_ENCODE, or IFG_FALLBACK when the image needs libvips's
 * saver (animation, metadata, other formats). */
int ifg_webp_encode(VipsImage *in, int quality, void **buf, size_t *len);

/* IFG_ERR_DECODE when the header does not parse. The image returned reads its pixels through a
 * tap that records a decoder failure for ifg_fail: read it on this thread only. */
int ifg_load(const void *buf, size_t len, int format, int shrink, double scale,
    int pages, int sequential, ifg_release_fn release, void *user, VipsImage **out);
int ifg_new_from_pixels(const void *data, size_t len, int width, int height,
    int bands, VipsImage **out);

/* Header facts. */
int ifg_width(VipsImage *in);
int ifg_height(VipsImage *in);
int ifg_bands(VipsImage *in);
int ifg_has_alpha(VipsImage *in);
int ifg_page_height(VipsImage *in);
int ifg_n_pages(VipsImage *in);
int ifg_is_animated(VipsImage *in);
int ifg_orientation(VipsImage *in);
int ifg_palette_bits(VipsImage *in);
int ifg_delays(VipsImage *in, int *out, int max);
int ifg_loop(VipsImage *in);
/* The band values of pixel (x, y): at most `max` into `out`, their count into `*n`. */
int ifg_getpoint(VipsImage *in, int x, int y, double *out, int max, int *n);
/* Every pixel, rendered into a g_malloc'd buffer (release with ifg_free()). */
int ifg_pixels(VipsImage *in, void **buf, size_t *len);
/* Copies every metadata field of `from` that is not part of the image header onto `to` (for
 * the memory images jpeg.c and resample.c build). */
void ifg_copy_fields(VipsImage *from, VipsImage *to);

/* Operations. */
int ifg_set_orientation(VipsImage *in, VipsImage **out, int orientation);
int ifg_copy_memory(VipsImage *in, VipsImage **out);
int ifg_to_processing(VipsImage *in, VipsImage **out);
/* resample.c's downscale where it applies, else ifg_resize_libvips. */
int ifg_resize(VipsImage *in, VipsImage **out, double hscale, double vscale);
/* vips_resize, premultiplied when there is alpha. */
int ifg_resize_libvips(VipsImage *in, VipsImage **out, double hscale, double vscale);
int ifg_extract(VipsImage *in, VipsImage **out, int left, int top, int width, int height);
int ifg_smartcrop(VipsImage *in, VipsImage **out, int width, int height);
int ifg_rot(VipsImage *in, VipsImage **out, int angle);
int ifg_flip(VipsImage *in, VipsImage **out, int horizontal);
int ifg_filters(VipsImage *in, VipsImage **out, double blur, double sharpen, int pixelate);
int ifg_embed(VipsImage *in, VipsImage **out, int x, int y, int width, int height);
int ifg_flatten(VipsImage *in, VipsImage **out, double r, double g, double b);
int ifg_find_trim(VipsImage *in, double threshold, int use_color, double r, double g,
    double b, int *left, int *top, int *width, int *height);
int ifg_replicate(VipsImage *in, VipsImage **out, int width, int height, int centered);
int ifg_composite(VipsImage *in, VipsImage *overlay, VipsImage **out, int x, int y,
    double opacity);
int ifg_arrayjoin(VipsImage **in, int n, VipsImage **out);
int ifg_set_animation(VipsImage *in, VipsImage **out, int page_height, const int *delays,
    int n, int loop);
int ifg_remove_animation(VipsImage *in, VipsImage **out);
int ifg_finish(VipsImage *in, VipsImage **out, int strip, int keep_copyright,
    int keep_profile, int animated, int rotated);

/* Saving: `*buf` is g_malloc'd, exactly `*len` bytes long, and the caller's to keep (it may hand
 * it on as it is) and to release with ifg_free(). `option` is the
 * JPEG progressive flag or the AVIF speed (0..=9); unused otherwise. Failures are IFG_ERR_ENCODE
 * (or IFG_ERR_DECODE when rendering the pipeline made a source's decoder fail, IFG_ERR_LIMITS for
 * a JPEG wider or taller than 65500 px). */
int ifg_save(VipsImage *in, int format, int quality, int option, void **buf, size_t *len);
/* Whether any metadata a saver would write (EXIF, XMP, ICC, an orientation other than 1) is
 * left on the image. */
int ifg_has_metadata(VipsImage *in);
/* What ifg_save does for WebP when webp.c falls back: libvips's webpsave. */
int ifg_save_libvips_webp(VipsImage *in, int quality, void **buf, size_t *len);

/* resample.c: Lanczos-3 downscale of an 8-bit image without alpha whose pixels are in memory,
 * to round(size * scale) on each axis (scales in (1/4, 1]). Returns 0, IFG_ERR_INTERNAL (out of
 * memory), or IFG_FALLBACK when the image needs vips_resize. */
int ifg_resample_down(VipsImage *in, VipsImage **out, double hscale, double vscale);

#endif
