/* A WebP encode that calls libwebp directly for the common result: one frame, 3 or 4 bands of
 * 8-bit sRGB, no metadata left to write.
 *
 * libvips's webpsave runs the same libwebp encoder with the same settings (preset "default",
 * quality Q, method = effort 4, alpha quality 100) but wraps it in its saver machinery, about
 * 2 ms of a 400 px thumbnail's 15-20 ms (benches/pipeline_stages.c, docs/performance.md).
 * Anything else — animation, metadata (EXIF, XMP, ICC, which libvips muxes into the
 * container), other band counts or formats — returns IFG_FALLBACK and goes through
 * libvips. The bitstream is the one libvips would write: crates/transform/src/tests/webp_direct.rs
 * compares them.
 */
#include "glue.h"

#include <string.h>

#include <webp/encode.h>

/* libwebp's writer: appends to the ifg_out in picture->custom_ptr (so the result is one
 * g_malloc'd block handed on as it is, where WebPMemoryWriter's would be copied). */
static int
write_out(const uint8_t *data, size_t size, const WebPPicture *picture)
{
  ifg_out *out = (ifg_out *) picture->custom_ptr;
  if (!ifg_out_reserve(out, size))
    return 0;
  memcpy(out->data + out->len, data, size);
  out->len += size;
  return 1;
}

int
ifg_webp_encode(VipsImage *in, int quality, void **buf, size_t *len)
{
  if ((in->Bands != 3 && in->Bands != 4) || in->BandFmt != VIPS_FORMAT_UCHAR ||
      in->Coding != VIPS_CODING_NONE ||
      vips_image_guess_interpretation(in) != VIPS_INTERPRETATION_sRGB ||
      vips_image_get_page_height(in) != in->Ysize || ifg_has_metadata(in))
    return IFG_FALLBACK;

  /* Renders a lazy pipeline into one buffer, as webpsave's sink does. */
  VipsImage *mem = vips_image_copy_memory(in);
  if (!mem)
    return ifg_fail(IFG_ERR_ENCODE);

  WebPConfig config;
  WebPPicture picture;
  ifg_out out = {0};
  int ok = WebPConfigPreset(&config, WEBP_PRESET_DEFAULT, (float) quality) &&
      WebPPictureInit(&picture);
  if (!ok) {
    g_object_unref(mem);
    vips_error("webpsave", "libwebp version mismatch");
    return ifg_fail(IFG_ERR_ENCODE);
  }
  config.method = 4;
  config.alpha_quality = 100;
  picture.width = mem->Xsize;
  picture.height = mem->Ysize;
  const uint8_t *pixels = (const uint8_t *) vips_image_get_data(mem);
  int stride = (int) VIPS_IMAGE_SIZEOF_LINE(mem);
  ok = mem->Bands == 3 ? WebPPictureImportRGB(&picture, pixels, stride)
                       : WebPPictureImportRGBA(&picture, pixels, stride);
  g_object_unref(mem);
  if (!ok) {
    WebPPictureFree(&picture);
    vips_error("webpsave", "out of memory importing %dx%d pixels", picture.width,
        picture.height);
    return ifg_fail(IFG_ERR_ENCODE);
  }
  picture.writer = write_out;
  picture.custom_ptr = &out;
  ok = WebPEncode(&config, &picture);
  int error = picture.error_code;
  WebPPictureFree(&picture);
  if (!ok) {
    g_free(out.data);
    vips_error("webpsave", "libwebp encode failed (error %d)", error);
    return ifg_fail(IFG_ERR_ENCODE);
  }
  ifg_out_take(&out, buf, len);
  return 0;
}
