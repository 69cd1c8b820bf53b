/* A Lanczos-3 downscale for 8-bit images already held in memory.
 *
 * The common thumbnail is a JPEG decoded with DCT scaling straight into memory (jpeg.c) and then
 * reduced by a factor between 1 and 2. libvips's resize does that through reducev and reduceh,
 * each with its own region, sequential line cache and embed for the edges: at 480x300 -> 400x250
 * that machinery costs more than the arithmetic (benches/pipeline_stages.c, docs/performance.md).
 * Here the reduction is two passes over plain buffers with precomputed fixed-point weights:
 * vertical first (its inner loop runs along a whole row and vectorises), then horizontal on the
 * already shorter image.
 *
 * Geometry follows libvips's reduce: the output has round(size * scale) samples and the two
 * grids share their outer edges (sample centres at i + 0.5). Edge taps that would fall outside
 * the image are dropped and the rest renormalised, so borders keep their colour.
 *
 * Only plain 8-bit images without alpha, whose pixels are already in memory, and scales in
 * (1/4, 1] on both axes — where vips_resize too only reduces with Lanczos-3 — take this path:
 * ifg_resample_down() returns IFG_FALLBACK for everything else and the caller uses
 * vips_resize.
 */
#include "glue.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Weights are integers scaled by 2^BITS. Normalised Lanczos-3 weights at scales in (1/4, 1] lie
 * in (-0.14, 1.0] (checked at the edges, where renormalisation makes them largest, for every
 * size pair up to 400), so 14 bits fit int16 and every 8-bit sum fits int32. */
#define BITS 14
#define ONE (1 << BITS)

/* Below a quarter, vips_resize box-shrinks before it reduces, which is cheaper than this
 * filter's 6/scale taps: those scales stay with libvips. */
#define MIN_SCALE 0.25

/* For each output sample: the first input sample it reads, how many it reads, and the weights,
 * `taps` per output (unused ones zero). */
typedef struct {
  int taps;
  int *first;
  int *count;
  int16_t *weights;
} ifg_filter;

static double
lanczos3(double x)
{
  x = fabs(x);
  if (x < 1e-9)
    return 1.0;
  if (x >= 3.0)
    return 0.0;
  double px = M_PI * x;
  return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
}

static void
filter_free(ifg_filter *f)
{
  VIPS_FREE(f->first);
  VIPS_FREE(f->count);
  VIPS_FREE(f->weights);
}

/* Weights to go from in_n to out_n samples (out_n <= in_n). On failure the caller still owns
 * (and frees) whatever was allocated. */
static int
filter_make(ifg_filter *f, int in_n, int out_n)
{
  double scale = (double) in_n / out_n;
  double support = 3.0 * scale;
  int taps = (int) ceil(2.0 * support) + 1;
  double *w = g_try_new(double, taps);

  f->taps = taps;
  f->first = g_try_new(int, out_n);
  f->count = g_try_new(int, out_n);
  f->weights = g_try_new0(int16_t, (size_t) out_n * taps);
  if (!w || !f->first || !f->count || !f->weights) {
    g_free(w);
    return -1;
  }
  for (int o = 0; o < out_n; o++) {
    double centre = (o + 0.5) * scale;
    int lo = (int) ceil(centre - support - 0.5);
    int hi = (int) floor(centre + support - 0.5);
    lo = VIPS_MAX(lo, 0);
    hi = VIPS_MIN(hi, in_n - 1);
    int n = VIPS_MIN(hi - lo + 1, taps);
    double sum = 0.0;
    for (int k = 0; k < n; k++) {
      w[k] = lanczos3((lo + k + 0.5 - centre) / scale);
      sum += w[k];
    }
    int16_t *out = f->weights + (size_t) o * taps;
    int total = 0, biggest = 0;
    for (int k = 0; k < n; k++) {
      out[k] = (int16_t) lrint(w[k] / sum * ONE);
      total += out[k];
      if (out[k] > out[biggest])
        biggest = k;
    }
    /* Rounding must not brighten or darken a flat area: the weights sum to exactly one. */
    out[biggest] = (int16_t) (out[biggest] + ONE - total);
    f->first[o] = lo;
    f->count[o] = n;
  }
  g_free(w);
  return 0;
}

static inline VipsPel
clip8(int32_t v)
{
  v >>= BITS;
  return (VipsPel) (v < 0 ? 0 : v > 255 ? 255 : v);
}

/* out row = sum over taps of weight * input row, for every output row. `acc` holds one row. */
static void
reduce_vertical(const VipsPel *in, size_t in_stride, int in_w, int bands, const ifg_filter *f,
    int out_h, VipsPel *out, int32_t *acc)
{
  size_t n = (size_t) in_w * bands;
  for (int y = 0; y < out_h; y++) {
    const int16_t *w = f->weights + (size_t) y * f->taps;
    const VipsPel *src = in + (size_t) f->first[y] * in_stride;
    for (size_t i = 0; i < n; i++)
      acc[i] = ONE / 2;
    for (int k = 0; k < f->count[y]; k++) {
      const int32_t c = w[k];
      const VipsPel *row = src + (size_t) k * in_stride;
      for (size_t i = 0; i < n; i++)
        acc[i] += c * row[i];
    }
    VipsPel *dst = out + (size_t) y * n;
    for (size_t i = 0; i < n; i++)
      dst[i] = clip8(acc[i]);
  }
}

/* Each output pixel of a row from `count` neighbouring input pixels; BANDS is a constant in
 * each instantiation so the band loop unrolls. */
#define REDUCE_ROW(BANDS)                                                                       \
  static void reduce_row_##BANDS(const VipsPel *in, const ifg_filter *f, int out_w, VipsPel *out) \
  {                                                                                             \
    for (int x = 0; x < out_w; x++) {                                                           \
      const int16_t *w = f->weights + (size_t) x * f->taps;                                     \
      const VipsPel *p = in + (size_t) f->first[x] * BANDS;                                     \
      int32_t acc[BANDS];                                                                       \
      for (int b = 0; b < BANDS; b++)                                                           \
        acc[b] = ONE / 2;                                                                       \
      for (int k = 0; k < f->count[x]; k++, p += BANDS)                                         \
        for (int b = 0; b < BANDS; b++)                                                         \
          acc[b] += w[k] * p[b];                                                                \
      for (int b = 0; b < BANDS; b++)                                                           \
        out[(size_t) x * BANDS + b] = clip8(acc[b]);                                            \
    }                                                                                           \
  }
REDUCE_ROW(1)
REDUCE_ROW(3)

static void
reduce_horizontal(const VipsPel *in, size_t in_stride, int h, int bands, const ifg_filter *f,
    int out_w, VipsPel *out)
{
  for (int y = 0; y < h; y++) {
    const VipsPel *src = in + (size_t) y * in_stride;
    VipsPel *dst = out + (size_t) y * out_w * bands;
    if (bands == 3)
      reduce_row_3(src, f, out_w, dst);
    else
      reduce_row_1(src, f, out_w, dst);
  }
}

static void
free_pixels(VipsImage *image, gpointer pixels)
{
  g_free(pixels);
}

/* Pixels of an image that lives in one memory buffer, or NULL when it would have to be
 * computed first. */
static const VipsPel *
memory_pixels(VipsImage *in)
{
  if ((in->dtype == VIPS_IMAGE_SETBUF || in->dtype == VIPS_IMAGE_SETBUF_FOREIGN) && in->data)
    return in->data;
  return NULL;
}

int
ifg_resample_down(VipsImage *in, VipsImage **out, double hscale, double vscale)
{
  const VipsPel *pixels = memory_pixels(in);
  int bands = in->Bands;
  if (!pixels || in->BandFmt != VIPS_FORMAT_UCHAR || in->Coding != VIPS_CODING_NONE ||
      (bands != 1 && bands != 3) || vips_image_get_page_height(in) != in->Ysize ||
      !(hscale > MIN_SCALE && hscale <= 1.0) || !(vscale > MIN_SCALE && vscale <= 1.0))
    return IFG_FALLBACK; /* written so that NaN falls back too */

  int in_w = in->Xsize, in_h = in->Ysize;
  /* vips_resize's output size (checked against it for every width up to 700). */
  int out_w = VIPS_MAX(1, (int) (in_w * hscale + 0.5));
  int out_h = VIPS_MAX(1, (int) (in_h * vscale + 0.5));
  /* Nothing to do; or rounding took the real ratio to 4 or more (5 px -> 1 at 0.26), where
   * vips_resize box-shrinks first. */
  if ((out_w == in_w && out_h == in_h) || in_w >= 4 * out_w || in_h >= 4 * out_h)
    return IFG_FALLBACK;
  size_t in_stride = VIPS_IMAGE_SIZEOF_LINE(in);
  size_t mid_stride = (size_t) in_w * bands;
  ifg_filter fv = {0}, fh = {0};
  VipsPel *mid = NULL, *result = NULL;
  int32_t *acc = NULL;
  int res = IFG_ERR_INTERNAL;

  /* An axis that keeps its size needs no filtering: it is copied. */
  if ((out_h != in_h && filter_make(&fv, in_h, out_h)) ||
      (out_w != in_w && filter_make(&fh, in_w, out_w))) {
    vips_error("resize", "out of memory for resampling weights");
    goto done;
  }
  result = g_try_malloc((size_t) out_w * bands * out_h);
  if (out_h != in_h) {
    mid = g_try_malloc(mid_stride * out_h);
    acc = g_try_new(int32_t, mid_stride);
  }
  if (!result || (out_h != in_h && (!mid || !acc))) {
    vips_error("resize", "out of memory for %dx%d pixels", in_w, out_h);
    goto done;
  }
  const VipsPel *rows = pixels;
  if (out_h != in_h) {
    reduce_vertical(pixels, in_stride, in_w, bands, &fv, out_h, mid, acc);
    rows = mid;
  }
  else
    mid_stride = in_stride;
  if (out_w != in_w)
    reduce_horizontal(rows, mid_stride, out_h, bands, &fh, out_w, result);
  else
    for (int y = 0; y < out_h; y++)
      memcpy(result + (size_t) y * out_w * bands, rows + (size_t) y * mid_stride,
          (size_t) out_w * bands);

  VipsImage *image = vips_image_new_from_memory(
      result, (size_t) out_w * bands * out_h, out_w, out_h, bands, VIPS_FORMAT_UCHAR);
  if (!image)
    goto done;
  g_signal_connect(image, "postclose", G_CALLBACK(free_pixels), result);
  result = NULL;
  /* Everything else (interpretation, resolution, metadata) as vips_resize would keep it. */
  image->Type = in->Type;
  image->Xres = in->Xres;
  image->Yres = in->Yres;
  image->Xoffset = in->Xoffset;
  image->Yoffset = in->Yoffset;
  ifg_copy_fields(in, image);
  *out = image;
  res = 0;

done:
  filter_free(&fv);
  filter_free(&fh);
  g_free(mid);
  g_free(result);
  g_free(acc);
  return res ? ifg_fail(res) : 0;
}
