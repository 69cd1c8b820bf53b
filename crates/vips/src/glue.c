/* imgforge's thin libvips binding: set-up, errors, loading, header access,
 * saving (operations are in ops.c). See glue.h for the conventions. */
#include "glue.h"

#include <math.h>
#include <string.h>

/* Loaders that stay usable; every other loader is blocked so that a crafted
 * source can never reach magick, poppler, rsvg, openslide, matio, ... */
static const char *const allowed_loaders[] = {
  "VipsForeignLoadJpeg",
  "VipsForeignLoadPng",
  "VipsForeignLoadWebp",
  "VipsForeignLoadNsgif",
  "VipsForeignLoadHeif",
  "VipsForeignLoadTiff",
  NULL,
};

/* libvips warns on stderr for benign things in user images ("ignoring nclx
 * profile", "EXIF too large"); per request that is log spam from data we do
 * not control. Failures are reported through the error buffer instead. */
static void
ignore_warning(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user)
{
}

int
ifg_init(void)
{
  if (VIPS_INIT("imgforge"))
    return -1;

  g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, ignore_warning, NULL);

  /* One job per worker thread: libvips's own thread pool would only compete
   * with the other workers, and a cache shared by unrelated requests holds
   * memory without hits (every request is a different source). */
  vips_concurrency_set(1);
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  vips_cache_set_max_files(0);
  vips_leak_set(FALSE);

  vips_block_untrusted_set(TRUE);
  vips_operation_block_set("VipsForeignLoad", TRUE);
  for (int i = 0; allowed_loaders[i]; i++)
    vips_operation_block_set(allowed_loaders[i], FALSE);

  return 0;
}

int
ifg_heif_available(void)
{
  return vips_type_find("VipsOperation", "heifsave_buffer") != 0 &&
      vips_type_find("VipsOperation", "heifload_buffer") != 0;
}

/* Set when the decoder of a source loaded on this thread failed while pixels were read, until
 * ifg_fail() reports it or ifg_error_clear() forgets it. libvips runs a pipeline on its own
 * worker threads: they set it through the pointer each source's tap holds (tap_generate) while
 * this thread waits in the libvips call, which reads it once that call has returned. */
static _Thread_local gint decode_failed;

int
ifg_fail(int kind)
{
  if (g_atomic_int_compare_and_exchange(&decode_failed, 1, 0))
    return IFG_ERR_DECODE;
  return kind;
}

char *
ifg_error_take(void)
{
  char *message = g_strdup(vips_error_buffer());
  vips_error_clear();
  return message;
}

void
ifg_error_clear(void)
{
  vips_error_clear();
  g_atomic_int_set(&decode_failed, 0);
}

void
ifg_free(void *p)
{
  g_free(p);
}

void
ifg_unref(VipsImage *image)
{
  if (image)
    g_object_unref(image);
}

void
ifg_thread_shutdown(void)
{
  vips_thread_shutdown();
}

gboolean
ifg_out_reserve(ifg_out *out, size_t more)
{
  if (out->cap - out->len >= more)
    return TRUE;
  if (more > G_MAXSIZE - out->len)
    return FALSE;
  size_t cap = VIPS_MAX(out->len + more, out->cap <= G_MAXSIZE / 2 ? out->cap * 2 : G_MAXSIZE);
  unsigned char *data = g_try_realloc(out->data, cap);
  if (!data)
    return FALSE;
  out->data = data;
  out->cap = cap;
  return TRUE;
}

void
ifg_out_take(ifg_out *out, void **buf, size_t *len)
{
  /* Shrinking in place: glibc splits the block (or mremaps a mapped one) without copying. */
  if (out->len > 0 && out->len < out->cap) {
    unsigned char *fit = g_try_realloc(out->data, out->len);
    if (fit)
      out->data = fit;
  }
  *buf = out->data;
  *len = out->len;
  out->data = NULL;
  out->len = out->cap = 0;
}

/* libvips's own accounting of the pixel buffers it allocates (every thread):
 * bytes held now, the most ever held, and live allocations. Read at metrics
 * scrape time; each takes libvips's tracking mutex briefly. */
size_t
ifg_tracked_mem(void)
{
  return vips_tracked_get_mem();
}

size_t
ifg_tracked_mem_highwater(void)
{
  return vips_tracked_get_mem_highwater();
}

int
ifg_tracked_allocs(void)
{
  return vips_tracked_get_allocs();
}

/* Every pixel of a loaded image passes through here unchanged (vips_region_region points the
 * output at the input's pixels: no copy). The tap's only input is the loader's image, so a
 * failure to produce those pixels is the decoder's: it is recorded in `b`, the loading thread's
 * decode_failed. */
static int
tap_generate(VipsRegion *out, void *seq, void *a, void *b, gboolean *stop)
{
  VipsRegion *in = (VipsRegion *) seq;
  VipsRect *r = &out->valid;

  if (vips_region_prepare(in, r)) {
    g_atomic_int_set((gint *) b, 1);
    return -1;
  }
  return vips_region_region(out, in, r, r->left, r->top);
}

/* The loader's image behind a tap: same header and metadata, same demand style. Takes over the
 * caller's reference to `in` on success (the tap releases it when it closes). */
static VipsImage *
tap(VipsImage *in)
{
  VipsImage *out = vips_image_new();

  if (vips_image_pipelinev(out, VIPS_DEMAND_STYLE_ANY, in, NULL) ||
      vips_image_generate(out, vips_start_one, tap_generate, vips_stop_one, in,
          (void *) &decode_failed)) {
    g_object_unref(out);
    return NULL;
  }
  vips_object_local(out, in);
  return out;
}

int
ifg_load(const void *buf, size_t len, int format, int shrink, double scale,
    int pages, int sequential, ifg_release_fn release, void *user, VipsImage **out)
{
  void *b = (void *) buf;
  VipsAccess access = sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
  /* Truncated or corrupt data must fail the request instead of producing a
   * half-grey picture that would then be cached. */
  VipsFailOn fail_on = VIPS_FAIL_ON_TRUNCATED;
  int res;

  *out = NULL;
  switch (format) {
  case IFG_LOAD_JPEG:
    res = vips_jpegload_buffer(b, len, out, "access", access, "shrink", VIPS_MAX(shrink, 1),
        "fail_on", fail_on, NULL);
    break;
  case IFG_LOAD_PNG:
    res = vips_pngload_buffer(b, len, out, "access", access, "fail_on", fail_on, NULL);
    break;
  case IFG_LOAD_WEBP:
    res = vips_webpload_buffer(b, len, out, "access", access, "scale", scale > 0 ? scale : 1.0,
        "n", pages, "fail_on", fail_on, NULL);
    break;
  case IFG_LOAD_GIF:
    res = vips_gifload_buffer(b, len, out, "access", access, "n", pages, "fail_on", fail_on,
        NULL);
    break;
  case IFG_LOAD_HEIF:
    res = vips_heifload_buffer(b, len, out, "access", access, "fail_on", fail_on, NULL);
    break;
  case IFG_LOAD_TIFF:
    res = vips_tiffload_buffer(b, len, out, "access", access, "fail_on", fail_on, NULL);
    break;
  default:
    vips_error("imgforge", "unsupported source format %d", format);
    return ifg_fail(IFG_ERR_INTERNAL);
  }

  /* The loaders read the header now (the pixels later, through the tap). */
  if (res) {
    VIPS_UNREF(*out);
    return ifg_fail(IFG_ERR_DECODE);
  }

  VipsImage *loaded = *out;
  if (!(*out = tap(loaded))) {
    g_object_unref(loaded);
    return ifg_fail(IFG_ERR_INTERNAL);
  }
  /* Every image derived from this one holds a reference to it (through the tap), so the
   * source bytes stay alive exactly as long as any pixels may be read. */
  g_signal_connect(loaded, "postclose", G_CALLBACK(release), user);
  return 0;
}

int
ifg_new_from_pixels(const void *data, size_t len, int width, int height, int bands,
    VipsImage **out)
{
  VipsImage *tmp = vips_image_new_from_memory_copy(data, len, width, height, bands,
      VIPS_FORMAT_UCHAR);
  if (!tmp)
    return ifg_fail(IFG_ERR_INTERNAL);

  VipsInterpretation interp = bands <= 2 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
  int res = vips_copy(tmp, out, "interpretation", interp, NULL);
  VIPS_UNREF(tmp);
  return ifg_result(res);
}

int
ifg_width(VipsImage *in)
{
  return vips_image_get_width(in);
}

int
ifg_height(VipsImage *in)
{
  return vips_image_get_height(in);
}

int
ifg_bands(VipsImage *in)
{
  return vips_image_get_bands(in);
}

int
ifg_has_alpha(VipsImage *in)
{
  return vips_image_hasalpha(in);
}

int
ifg_page_height(VipsImage *in)
{
  return vips_image_get_page_height(in);
}

int
ifg_n_pages(VipsImage *in)
{
  return vips_image_get_n_pages(in);
}

int
ifg_is_animated(VipsImage *in)
{
  int n_pages;

  return vips_image_get_typeof(in, "delay") != G_TYPE_INVALID &&
      vips_image_get_typeof(in, "n-pages") == G_TYPE_INT &&
      vips_image_get_int(in, "n-pages", &n_pages) == 0 && n_pages > 1;
}

int
ifg_orientation(VipsImage *in)
{
  int orientation;

  if (vips_image_get_typeof(in, VIPS_META_ORIENTATION) == G_TYPE_INT &&
      vips_image_get_int(in, VIPS_META_ORIENTATION, &orientation) == 0 &&
      orientation >= 1 && orientation <= 8)
    return orientation;

  return 1;
}

int
ifg_palette_bits(VipsImage *in)
{
  int bits;

  if (vips_image_get_typeof(in, "palette-bit-depth") == G_TYPE_INT &&
      vips_image_get_int(in, "palette-bit-depth", &bits) == 0)
    return bits;

  return 0;
}

int
ifg_delays(VipsImage *in, int *out, int max)
{
  int *delays = NULL;
  int n = 0;

  if (vips_image_get_typeof(in, "delay") == G_TYPE_INVALID ||
      vips_image_get_array_int(in, "delay", &delays, &n)) {
    vips_error_clear();
    return 0;
  }

  for (int i = 0; i < n && i < max; i++)
    out[i] = delays[i];

  return n;
}

int
ifg_loop(VipsImage *in)
{
  int loop;

  if (vips_image_get_typeof(in, "loop") == G_TYPE_INT &&
      vips_image_get_int(in, "loop", &loop) == 0)
    return loop;

  return 0;
}

int
ifg_getpoint(VipsImage *in, int x, int y, double *out, int max, int *n)
{
  double *vector = NULL;

  *n = 0;
  if (vips_getpoint(in, &vector, n, x, y, NULL))
    return ifg_fail(IFG_ERR_INTERNAL);

  for (int i = 0; i < *n && i < max; i++)
    out[i] = vector[i];

  g_free(vector);
  return 0;
}

int
ifg_pixels(VipsImage *in, void **buf, size_t *len)
{
  *buf = vips_image_write_to_memory(in, len);
  return *buf ? 0 : ifg_fail(IFG_ERR_INTERNAL);
}

int
ifg_set_orientation(VipsImage *in, VipsImage **out, int orientation)
{
  if (vips_copy(in, out, NULL))
    return ifg_fail(IFG_ERR_INTERNAL);

  vips_image_set_int(*out, VIPS_META_ORIENTATION, orientation);
  return 0;
}

int
ifg_copy_memory(VipsImage *in, VipsImage **out)
{
  *out = vips_image_copy_memory(in);
  return *out ? 0 : ifg_fail(IFG_ERR_INTERNAL);
}

int
ifg_has_metadata(VipsImage *in)
{
  int orientation = 1;
  /* An orientation tag is written as EXIF even when there is no exif-data. */
  if (vips_image_get_typeof(in, VIPS_META_ORIENTATION) &&
      vips_image_get_int(in, VIPS_META_ORIENTATION, &orientation))
    vips_error_clear();
  return orientation != 1 || vips_image_get_typeof(in, VIPS_META_EXIF_NAME) ||
      vips_image_get_typeof(in, VIPS_META_XMP_NAME) ||
      vips_image_get_typeof(in, VIPS_META_ICC_NAME);
}

int
ifg_save_libvips_jpeg(VipsImage *in, int quality, int progressive, void **buf, size_t *len)
{
  if (!vips_jpegsave_buffer(in, buf, len, "Q", quality, "optimize_coding", TRUE, "interlace",
          progressive ? TRUE : FALSE, "strip", !ifg_has_metadata(in), NULL))
    return 0;
  /* libjpeg refuses the size before it reads a pixel (what jpeg.c reports as a limit too). */
  return ifg_fail(ifg_jpeg_too_big(in) ? IFG_ERR_LIMITS : IFG_ERR_ENCODE);
}

int
ifg_save_libvips_webp(VipsImage *in, int quality, void **buf, size_t *len)
{
  /* Without "strip", libvips writes an EXIF block (resolution, orientation) of its own. */
  return vips_webpsave_buffer(in, buf, len, "Q", quality, "effort", 4, "strip",
             !ifg_has_metadata(in), NULL)
      ? ifg_fail(IFG_ERR_ENCODE)
      : 0;
}

int
ifg_save(VipsImage *in, int format, int quality, int option, void **buf, size_t *len)
{
  int res;

  *buf = NULL;
  *len = 0;
  switch (format) {
  case IFG_SAVE_JPEG:
    res = ifg_jpeg_encode(in, quality, option, buf, len);
    if (res == IFG_FALLBACK)
      res = ifg_save_libvips_jpeg(in, quality, option, buf, len);
    break;
  case IFG_SAVE_PNG: {
    int bits = ifg_palette_bits(in);
    if (bits > 0 && bits <= 8)
      res = vips_pngsave_buffer(in, buf, len, "palette", TRUE,
          "bitdepth", bits > 4 ? 8 : (bits > 2 ? 4 : bits), "filter",
          VIPS_FOREIGN_PNG_FILTER_NONE, NULL);
    else
      res = vips_pngsave_buffer(in, buf, len, "filter", VIPS_FOREIGN_PNG_FILTER_ALL, NULL);
    res = res ? ifg_fail(IFG_ERR_ENCODE) : 0;
    break;
  }
  case IFG_SAVE_WEBP:
    res = ifg_webp_encode(in, quality, buf, len);
    if (res == IFG_FALLBACK)
      res = ifg_save_libvips_webp(in, quality, buf, len);
    break;
  case IFG_SAVE_GIF: {
    int bits = ifg_palette_bits(in);
    res = vips_gifsave_buffer(in, buf, len, "bitdepth", bits > 0 && bits <= 8 ? bits : 8,
              NULL)
        ? ifg_fail(IFG_ERR_ENCODE)
        : 0;
    break;
  }
  case IFG_SAVE_AVIF:
    /* heifsave defaults to HEVC: AVIF must be AV1. */
    res = vips_heifsave_buffer(in, buf, len, "Q", quality, "compression",
        VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "encoder", VIPS_FOREIGN_HEIF_ENCODER_AOM,
        "effort", 9 - VIPS_CLIP(0, option, 9), "bitdepth", 8, NULL)
        ? ifg_fail(IFG_ERR_ENCODE)
        : 0;
    break;
  default:
    vips_error("imgforge", "unsupported output format %d", format);
    return ifg_fail(IFG_ERR_INTERNAL);
  }

  /* Each case returned its kind (ifg_fail called once per failure). */
  if (res) {
    g_free(*buf);
    *buf = NULL;
    *len = 0;
    return res;
  }
  /* libvips's savers write into a GByteArray, which grows by powers of two: the caller keeps
   * this very block (in a cache, maybe), so give the slack back (in place: glibc splits or
   * mremaps, and a block that fits already is left alone). */
  if (*buf && *len > 0) {
    void *fit = g_try_realloc(*buf, *len);
    if (fit)
      *buf = fit;
  }
  return 0;
}

/* Metadata libvips keeps in the image header itself, not as fields to copy. */
static int
ifg_is_builtin_field(const char *name)
{
  static const char *builtin[] = {"width", "height", "bands", "format", "coding",
      "interpretation", "xoffset", "yoffset", "xres", "yres", "filename", "mode", NULL};
  for (int i = 0; builtin[i]; i++)
    if (strcmp(name, builtin[i]) == 0)
      return 1;
  return 0;
}

void
ifg_copy_fields(VipsImage *from, VipsImage *to)
{
  gchar **names = vips_image_get_fields(from);
  for (int i = 0; names[i]; i++) {
    GValue value = G_VALUE_INIT;
    if (ifg_is_builtin_field(names[i]) || vips_image_get(from, names[i], &value))
      continue;
    vips_image_set(to, names[i], &value);
    g_value_unset(&value);
  }
  g_strfreev(names);
}
