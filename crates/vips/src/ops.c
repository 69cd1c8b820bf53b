/* imgforge's thin libvips binding: image operations (see glue.h for the
 * conventions). Split from glue.c, which holds set-up, loading, header
 * access and saving. */
#include "glue.h"

#include <math.h>
#include <string.h>

static int
has_profile(VipsImage *in)
{
  return vips_image_get_typeof(in, VIPS_META_ICC_NAME) != G_TYPE_INVALID;
}

/* Brings any source into 8-bit sRGB or 8-bit grey, the two spaces every later
 * step works in. RGB sources keep their ICC profile: ifg_finish() converts the
 * (much smaller) result to sRGB. Other spaces (CMYK, Lab, 16-bit, float) are
 * converted now; an imported profile is dropped since it no longer describes
 * the pixels. */
int
ifg_to_processing(VipsImage *in, VipsImage **out)
{
  VipsImage *base = vips_image_new();
  VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 4);
  VipsInterpretation interp = vips_image_guess_interpretation(in);
  int res;
  int keep = 0;

  if (in->Coding == VIPS_CODING_RAD) {
    if (vips_rad2float(in, &t[0], NULL)) {
      VIPS_UNREF(base);
      return ifg_fail(IFG_ERR_INTERNAL);
    }
    in = t[0];
    interp = vips_image_guess_interpretation(in);
  }

  /* More bands than colour plus alpha (a TIFF's extra samples, found by fuzzing) would break
   * every later step that takes one value per colour band (flatten, embed, colourspace): keep
   * the colour bands and the first extra one as alpha. */
  switch (interp) {
  case VIPS_INTERPRETATION_B_W:
  case VIPS_INTERPRETATION_GREY16:
    keep = 2;
    break;
  case VIPS_INTERPRETATION_sRGB:
  case VIPS_INTERPRETATION_RGB16:
    keep = 4;
    break;
  case VIPS_INTERPRETATION_CMYK:
    keep = 5;
    break;
  default:
    break;
  }
  if (keep > 0 && in->Bands > keep) {
    if (vips_extract_band(in, &t[3], 0, "n", keep, NULL)) {
      VIPS_UNREF(base);
      return ifg_fail(IFG_ERR_INTERNAL);
    }
    in = t[3];
  }

  switch (interp) {
  case VIPS_INTERPRETATION_sRGB:
  case VIPS_INTERPRETATION_B_W:
    if (in->BandFmt == VIPS_FORMAT_UCHAR) {
      /* Nothing to convert: the same image, so that a memory image stays one (resample.c). */
      g_object_ref(in);
      *out = in;
      res = 0;
      break;
    }
    res = vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL);
    break;
  case VIPS_INTERPRETATION_RGB16:
    res = vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, NULL);
    break;
  case VIPS_INTERPRETATION_GREY16:
    res = vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL);
    break;
  default:
    if (has_profile(in) &&
        (in->BandFmt == VIPS_FORMAT_UCHAR || in->BandFmt == VIPS_FORMAT_USHORT)) {
      res = vips_icc_import(in, &t[1], "embedded", TRUE, NULL) ||
          vips_colourspace(t[1], &t[2], VIPS_INTERPRETATION_sRGB, NULL) ||
          vips_copy(t[2], out, NULL);
    }
    else {
      res = vips_colourspace(in, &t[2], VIPS_INTERPRETATION_sRGB, NULL) ||
          vips_cast(t[2], out, VIPS_FORMAT_UCHAR, NULL);
    }
    if (!res)
      vips_image_remove(*out, VIPS_META_ICC_NAME);
    break;
  }

  VIPS_UNREF(base);
  return ifg_result(res);
}

int
ifg_resize(VipsImage *in, VipsImage **out, double hscale, double vscale)
{
  int res = ifg_resample_down(in, out, hscale, vscale);
  return res == IFG_FALLBACK ? ifg_resize_libvips(in, out, hscale, vscale) : res;
}

int
ifg_resize_libvips(VipsImage *in, VipsImage **out, double hscale, double vscale)
{
  if (!vips_image_hasalpha(in))
    return ifg_result(vips_resize(in, out, hscale, "vscale", vscale, NULL));

  /* Resampling straight alpha bleeds the colour of transparent pixels into
   * the edges: resample premultiplied. */
  VipsImage *base = vips_image_new();
  VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 4);
  VipsBandFormat format = in->BandFmt;

  int res = vips_premultiply(in, &t[0], NULL) ||
      vips_resize(t[0], &t[1], hscale, "vscale", vscale, NULL) ||
      vips_unpremultiply(t[1], &t[2], NULL) ||
      vips_cast(t[2], out, format, NULL);

  VIPS_UNREF(base);
  return ifg_result(res);
}

int
ifg_extract(VipsImage *in, VipsImage **out, int left, int top, int width, int height)
{
  return ifg_result(vips_extract_area(in, out, left, top, width, height, NULL));
}

int
ifg_smartcrop(VipsImage *in, VipsImage **out, int width, int height)
{
  return ifg_result(vips_smartcrop(in, out, width, height, "interesting",
      VIPS_INTERESTING_ATTENTION, NULL));
}

int
ifg_rot(VipsImage *in, VipsImage **out, int angle)
{
  switch (((angle % 360) + 360) % 360) {
  case 90:
    return ifg_result(vips_rot(in, out, VIPS_ANGLE_D90, NULL));
  case 180:
    return ifg_result(vips_rot(in, out, VIPS_ANGLE_D180, NULL));
  case 270:
    return ifg_result(vips_rot(in, out, VIPS_ANGLE_D270, NULL));
  default:
    return ifg_result(vips_copy(in, out, NULL));
  }
}

int
ifg_flip(VipsImage *in, VipsImage **out, int horizontal)
{
  VipsDirection direction = horizontal ? VIPS_DIRECTION_HORIZONTAL : VIPS_DIRECTION_VERTICAL;
  return ifg_result(vips_flip(in, out, direction, NULL));
}

int
ifg_filters(VipsImage *in, VipsImage **out, double blur, double sharpen, int pixelate)
{
  VipsImage *base = vips_image_new();
  VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 9);
  VipsInterpretation interp = in->Type;
  VipsBandFormat format = in->BandFmt;
  int premultiplied = 0;

  if ((blur > 0 || sharpen > 0) && vips_image_hasalpha(in)) {
    IFG_FAIL_IF(vips_premultiply(in, &t[0], NULL) || vips_cast(t[0], &t[1], format, NULL));
    in = t[1];
    premultiplied = 1;
  }

  if (blur > 0) {
    IFG_FAIL_IF(vips_gaussblur(in, &t[2], blur, NULL));
    in = t[2];
  }

  if (sharpen > 0) {
    IFG_FAIL_IF(vips_sharpen(in, &t[3], "sigma", sharpen, NULL));
    in = t[3];
  }

  pixelate = VIPS_MIN(pixelate, VIPS_MAX(in->Xsize, in->Ysize));
  if (pixelate > 1) {
    int w = in->Xsize, h = in->Ysize;
    /* Whole blocks only: mirror the edge out to a multiple of the block
     * size so that the last row and column are not darker. */
    int tw = (int) ceil((double) w / pixelate) * pixelate;
    int th = (int) ceil((double) h / pixelate) * pixelate;

    if (tw > w || th > h) {
      IFG_FAIL_IF(vips_embed(in, &t[4], 0, 0, tw, th, "extend", VIPS_EXTEND_MIRROR, NULL));
      in = t[4];
    }
    IFG_FAIL_IF(vips_shrink(in, &t[5], pixelate, pixelate, NULL) ||
        vips_zoom(t[5], &t[6], pixelate, pixelate, NULL));
    in = t[6];
    if (tw > w || th > h) {
      IFG_FAIL_IF(vips_extract_area(in, &t[7], 0, 0, w, h, NULL));
      in = t[7];
    }
  }

  if (premultiplied) {
    IFG_FAIL_IF(vips_unpremultiply(in, &t[8], NULL));
    in = t[8];
  }

  VipsImage *tmp = NULL;
  int res = vips_colourspace(in, &tmp, interp, NULL) || vips_cast(tmp, out, format, NULL);
  VIPS_UNREF(tmp);
  VIPS_UNREF(base);
  return ifg_result(res);
}

int
ifg_embed(VipsImage *in, VipsImage **out, int x, int y, int width, int height)
{
  VipsImage *tmp = NULL;

  /* New area is transparent; ifg_flatten() paints it with the background
   * when the output has no alpha or a background was asked for. */
  if (!vips_image_hasalpha(in)) {
    if (vips_addalpha(in, &tmp, NULL))
      return ifg_fail(IFG_ERR_INTERNAL);
    in = tmp;
  }

  int res = vips_embed(in, out, x, y, width, height, "extend", VIPS_EXTEND_BLACK, NULL);
  VIPS_UNREF(tmp);
  return ifg_result(res);
}

int
ifg_flatten(VipsImage *in, VipsImage **out, double r, double g, double b)
{
  if (!vips_image_hasalpha(in))
    return ifg_result(vips_copy(in, out, NULL));

  VipsImage *tmp = NULL;
  int grey_bg = r == g && g == b;

  if (!grey_bg && vips_image_guess_interpretation(in) != VIPS_INTERPRETATION_sRGB) {
    if (vips_colourspace(in, &tmp, VIPS_INTERPRETATION_sRGB, NULL))
      return ifg_fail(IFG_ERR_INTERNAL);
    in = tmp;
  }

  VipsArrayDouble *bg = in->Bands > 2 ? vips_array_double_newv(3, r, g, b)
                                      : vips_array_double_newv(1, r);
  int res = vips_flatten(in, out, "background", bg, NULL);
  vips_area_unref(VIPS_AREA(bg));
  VIPS_UNREF(tmp);
  return ifg_result(res);
}

int
ifg_find_trim(VipsImage *in, double threshold, int use_color, double r, double g, double b,
    int *left, int *top, int *width, int *height)
{
  VipsImage *base = vips_image_new();
  VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 2);
  double *corner = NULL;
  int corner_n = 0;
  VipsArrayDouble *bg;

  if (vips_image_guess_interpretation(in) != VIPS_INTERPRETATION_sRGB) {
    if (vips_colourspace(in, &t[0], VIPS_INTERPRETATION_sRGB, NULL)) {
      VIPS_UNREF(base);
      return ifg_fail(IFG_ERR_INTERNAL);
    }
    in = t[0];
  }

  /* Transparency trims as magenta (imgproxy's convention: `t:10:FF00FF`). */
  if (vips_image_hasalpha(in)) {
    int kind = ifg_flatten(in, &t[1], 255.0, 0.0, 255.0);
    if (kind) {
      VIPS_UNREF(base);
      return kind;
    }
    in = t[1];
  }

  if (use_color)
    bg = vips_array_double_newv(3, r, g, b);
  else {
    if (vips_getpoint(in, &corner, &corner_n, 0, 0, NULL)) {
      VIPS_UNREF(base);
      return ifg_fail(IFG_ERR_INTERNAL);
    }
    bg = vips_array_double_new(corner, corner_n);
  }

  int res = vips_find_trim(in, left, top, width, height, "background", bg, "threshold",
      threshold, NULL);

  vips_area_unref(VIPS_AREA(bg));
  g_free(corner);
  VIPS_UNREF(base);
  return ifg_result(res);
}

int
ifg_replicate(VipsImage *in, VipsImage **out, int width, int height, int centered)
{
  VipsImage *tmp = NULL;
  int across = (int) ceil((double) width / in->Xsize);
  int down = (int) ceil((double) height / in->Ysize);

  /* An odd count puts a whole tile in the middle of the canvas. */
  if (centered) {
    if (across % 2 == 0)
      across++;
    if (down % 2 == 0)
      down++;
  }

  if (vips_replicate(in, &tmp, across, down, NULL))
    return ifg_fail(IFG_ERR_INTERNAL);

  int left = centered ? (tmp->Xsize - width) / 2 : 0;
  int top = centered ? (tmp->Ysize - height) / 2 : 0;
  int res = vips_extract_area(tmp, out, left, top, width, height, NULL);
  VIPS_UNREF(tmp);
  return ifg_result(res);
}

int
ifg_composite(VipsImage *in, VipsImage *overlay, VipsImage **out, int x, int y, double opacity)
{
  VipsImage *base = vips_image_new();
  VipsImage **t = (VipsImage **) vips_object_local_array(VIPS_OBJECT(base), 7);
  int had_alpha = vips_image_hasalpha(in);

  if (!vips_image_hasalpha(overlay)) {
    IFG_FAIL_IF(vips_addalpha(overlay, &t[0], NULL));
    overlay = t[0];
  }

  if (opacity < 1) {
    IFG_FAIL_IF(vips_extract_band(overlay, &t[1], 0, "n", overlay->Bands - 1, NULL) ||
        vips_extract_band(overlay, &t[2], overlay->Bands - 1, "n", 1, NULL) ||
        vips_linear1(t[2], &t[3], opacity, 0, NULL) ||
        vips_bandjoin2(t[1], t[3], &t[4], NULL));
    overlay = t[4];
  }

  IFG_FAIL_IF(vips_composite2(in, overlay, &t[5], VIPS_BLEND_MODE_OVER, "x", x, "y", y,
              "compositing_space", VIPS_INTERPRETATION_sRGB, NULL) ||
      vips_cast(t[5], &t[6], VIPS_FORMAT_UCHAR, NULL));

  int res;
  if (!had_alpha && vips_image_hasalpha(t[6]))
    res = vips_extract_band(t[6], out, 0, "n", t[6]->Bands - 1, NULL);
  else
    res = vips_copy(t[6], out, NULL);

  VIPS_UNREF(base);
  return ifg_result(res);
}

int
ifg_arrayjoin(VipsImage **in, int n, VipsImage **out)
{
  return ifg_result(vips_arrayjoin(in, out, n, "across", 1, NULL));
}

static void
remove_animation_fields(VipsImage *image)
{
  vips_image_remove(image, "delay");
  vips_image_remove(image, "loop");
  vips_image_remove(image, "page-height");
  vips_image_remove(image, "n-pages");
  vips_image_remove(image, "gif-delay");
  vips_image_remove(image, "gif-loop");
}

int
ifg_set_animation(VipsImage *in, VipsImage **out, int page_height, const int *delays, int n,
    int loop)
{
  if (vips_copy(in, out, NULL))
    return ifg_fail(IFG_ERR_INTERNAL);

  remove_animation_fields(*out);
  vips_image_set_int(*out, "page-height", page_height);
  vips_image_set_int(*out, "n-pages", n);
  vips_image_set_int(*out, "loop", loop);
  vips_image_set_array_int(*out, "delay", delays, n);
  return 0;
}

int
ifg_remove_animation(VipsImage *in, VipsImage **out)
{
  if (vips_copy(in, out, NULL))
    return ifg_fail(IFG_ERR_INTERNAL);

  remove_animation_fields(*out);
  return 0;
}

/* Whether the embedded profile is sRGB IEC61966-2.1, i.e. converting to
 * sRGB would change nothing but cost a colour transform. */
static int
profile_is_srgb(VipsImage *in)
{
  static const char date[] = { 7, (char) 206, 0, 2, 0, 9 };
  static const char version[] = { 2, 16, 0, 0 };
  const void *data = NULL;
  size_t len = 0;

  if (vips_image_get_blob(in, VIPS_META_ICC_NAME, &data, &len) || !data || len < 128)
    return 0;

  const char *p = data;
  return memcmp(p + 48, "IEC ", 4) == 0 && memcmp(p + 16, "RGB ", 4) == 0 &&
      memcmp(p + 52, "sRGB", 4) == 0 && memcmp(p + 80, "HP  ", 4) == 0 &&
      memcmp(p + 24, date, 6) == 0 && memcmp(p + 8, version, 4) == 0;
}

typedef struct {
  int keep_copyright;
  int keep_profile;
  int animated;
} StripOptions;

static void *
strip_field(VipsImage *image, const char *name, GValue *value, void *a)
{
  StripOptions *opts = a;

  if (strcmp(name, "palette-bit-depth") == 0 || strcmp(name, "bits-per-sample") == 0 ||
      strcmp(name, "palette") == 0)
    return NULL;
  if (opts->keep_profile && strcmp(name, VIPS_META_ICC_NAME) == 0)
    return NULL;
  /* libvips rebuilds EXIF from "exif-data" minus the exif-* fields that were
   * removed, so keeping these three leaves only the copyright tags. */
  if (opts->keep_copyright &&
      (strcmp(name, VIPS_META_EXIF_NAME) == 0 || strcmp(name, "exif-ifd0-Copyright") == 0 ||
          strcmp(name, "exif-ifd0-Artist") == 0))
    return NULL;
  if (opts->animated &&
      (strcmp(name, "page-height") == 0 || strcmp(name, "delay") == 0 ||
          strcmp(name, "loop") == 0 || strcmp(name, "n-pages") == 0))
    return NULL;

  vips_image_remove(image, name);
  return NULL;
}

int
ifg_finish(VipsImage *in, VipsImage **out, int strip, int keep_copyright, int keep_profile,
    int animated, int rotated)
{
  VipsImage *tmp = NULL;

  /* A non-sRGB profile that is not kept is applied to the pixels, so the
   * result looks the same in browsers that assume sRGB. */
  if (!keep_profile && has_profile(in) && !profile_is_srgb(in)) {
    if (vips_icc_transform(in, &tmp, "srgb", "embedded", TRUE, NULL) == 0)
      in = tmp;
    else
      vips_error_clear(); /* an unusable profile: keep the pixels as they are */
  }

  static const double dpmm = 72.0 / 25.4;
  int res = strip ? vips_copy(in, out, "xres", dpmm, "yres", dpmm, NULL)
                  : vips_copy(in, out, NULL);
  VIPS_UNREF(tmp);
  if (res)
    return ifg_fail(IFG_ERR_INTERNAL);

  if (!keep_profile)
    vips_image_remove(*out, VIPS_META_ICC_NAME);

  if (strip) {
    StripOptions opts = { keep_copyright, keep_profile, animated };
    vips_image_map(*out, strip_field, &opts);
    /* Kept for its copyright tags only: without them libvips would still write an EXIF block
     * (orientation, resolution) into a stripped result. */
    if (keep_copyright && !vips_image_get_typeof(*out, "exif-ifd0-Copyright") &&
        !vips_image_get_typeof(*out, "exif-ifd0-Artist"))
      vips_image_remove(*out, VIPS_META_EXIF_NAME);
  }
  else if (rotated) {
    vips_image_remove(*out, VIPS_META_ORIENTATION);
    vips_image_remove(*out, "exif-ifd0-Orientation");
  }

  return 0;
}

