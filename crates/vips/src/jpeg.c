/* A JPEG shrink-on-load path that calls libjpeg directly.
 *
 * libvips's jpegload decodes through its region and sequential-access machinery; for a 1/4 or
 * 1/8 DCT-scaled decode that machinery costs 10-15 % of the whole job (benches/jpeg_decode_ab.c,
 * docs/performance.md). Here the scaled image is decoded in one pass into one buffer, which
 * becomes a memory image carrying the metadata libvips read from the header, so every later
 * step sees what jpegload would have given it.
 *
 * Only the common case is handled: YCbCr/RGB (3 components) or greyscale sources. CMYK and
 * YCCK (Adobe's inverted ink, embedded profiles) return IFG_FALLBACK and go through
 * libvips. Like jpegload with fail_on=truncated, a premature end of data fails the decode and
 * other warnings are tolerated.
 */
#include "glue.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* JWRN_JPEG_EOF */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  const char *domain; /* the error message's prefix: jpegload or jpegsave */
} ifg_jpeg_err;

static void
ifg_jpeg_error_exit(j_common_ptr info)
{
  ifg_jpeg_err *err = (ifg_jpeg_err *) info->err;
  char message[JMSG_LENGTH_MAX];
  info->err->format_message(info, message);
  vips_error(err->domain, "%s", message);
  longjmp(err->jump, 1);
}

static void
ifg_jpeg_emit_message(j_common_ptr info, int level)
{
  ifg_jpeg_err *err = (ifg_jpeg_err *) info->err;
  /* level -1 is a warning; a premature end means a half-grey picture, which must not be served
   * or cached. Stop at once: the rest would only decode padding. */
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
    vips_error("jpegload", "Premature end of JPEG file");
    longjmp(err->jump, 1);
  }
}

static void
ifg_free_pixels(VipsImage *image, gpointer pixels)
{
  g_free(pixels);
}

int
ifg_jpeg_decode(const void *buf, size_t len, int shrink, VipsImage *header, VipsImage **out)
{
  struct jpeg_decompress_struct d;
  ifg_jpeg_err err;
  /* volatile: assigned between setjmp and a possible longjmp, read after it. */
  unsigned char *volatile pixels = NULL;
  VipsImage *image;
  size_t stride;
  int bands;

  *out = NULL;
  memset(&err, 0, sizeof(err));
  err.domain = "jpegload";
  d.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = ifg_jpeg_error_exit;
  err.pub.emit_message = ifg_jpeg_emit_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&d);
    g_free(pixels);
    return ifg_fail(IFG_ERR_DECODE);
  }
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, (const unsigned char *) buf, (unsigned long) len);
  jpeg_read_header(&d, TRUE);
  switch (d.jpeg_color_space) {
  case JCS_GRAYSCALE:
    d.out_color_space = JCS_GRAYSCALE;
    bands = 1;
    break;
  case JCS_YCbCr:
  case JCS_RGB:
    d.out_color_space = JCS_RGB;
    bands = 3;
    break;
  default:
    jpeg_destroy_decompress(&d);
    return IFG_FALLBACK;
  }
  d.scale_num = 1;
  d.scale_denom = (unsigned int) VIPS_CLIP(1, shrink, 8);
  jpeg_start_decompress(&d);
  stride = (size_t) d.output_width * bands;
  pixels = g_try_malloc(stride * d.output_height);
  if (!pixels) {
    vips_error("jpegload", "out of memory for %ux%u pixels", d.output_width, d.output_height);
    jpeg_destroy_decompress(&d);
    return ifg_fail(IFG_ERR_LIMITS);
  }
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = pixels + stride * d.output_scanline;
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);

  image = vips_image_new_from_memory(pixels, stride * d.output_height, (int) d.output_width,
      (int) d.output_height, bands, VIPS_FORMAT_UCHAR);
  jpeg_destroy_decompress(&d);
  if (!image) {
    g_free(pixels);
    return ifg_fail(IFG_ERR_INTERNAL);
  }
  g_signal_connect(image, "postclose", G_CALLBACK(ifg_free_pixels), pixels);
  image->Type = bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
  image->Xres = header->Xres;
  image->Yres = header->Yres;
  ifg_copy_fields(header, image);
  *out = image;
  return 0;
}

int
ifg_jpeg_too_big(VipsImage *in)
{
  return in->Xsize > JPEG_MAX_DIMENSION || in->Ysize > JPEG_MAX_DIMENSION;
}

/* The encode half: a JPEG result — 8-bit sRGB or greyscale, one frame, no metadata left —
 * written by libjpeg with jpegsave's settings (quality, Huffman optimisation, chroma 4:2:0 below
 * Q 90 and 4:4:4 from it, optional progressive scans, no APP segments). libvips's
 * saver machinery around the same libjpeg calls costs about 0.8 ms of a 400 px thumbnail
 * (benches/pipeline_stages.c). Anything else returns IFG_FALLBACK. */
/* libjpeg's destination: the caller's ifg_out, grown as libjpeg fills it. (libjpeg's own
 * jpeg_mem_dest mallocs a buffer that only the end of a successful encode hands back: an error
 * longjmp leaves it unreachable, and after a regrowth even the pointer the caller was given is
 * stale.) */
typedef struct {
  struct jpeg_destination_mgr pub;
  ifg_out *out;
} ifg_jpeg_dest;

/* Points libjpeg at the free room of the buffer after growing it by `more` bytes. */
static void
dest_room(j_compress_ptr c, size_t more)
{
  ifg_jpeg_dest *dest = (ifg_jpeg_dest *) c->dest;
  if (!ifg_out_reserve(dest->out, more))
    ERREXIT1(c, JERR_OUT_OF_MEMORY, 10);
  dest->pub.next_output_byte = dest->out->data + dest->out->len;
  dest->pub.free_in_buffer = dest->out->cap - dest->out->len;
}

static void
dest_init(j_compress_ptr c)
{
  /* A first guess of an eighth of the pixel bytes, within [16 KiB, 1 MiB]: a 400 px thumbnail
   * at Q 80 fits at once; larger results double the buffer a few times. */
  size_t guess = (size_t) c->image_width * c->image_height * (size_t) c->input_components / 8;
  dest_room(c, VIPS_CLIP(16 << 10, guess, 1 << 20));
}

static boolean
dest_empty(j_compress_ptr c)
{
  ifg_jpeg_dest *dest = (ifg_jpeg_dest *) c->dest;
  /* libjpeg calls this when it has filled all the room it was given. */
  dest->out->len = dest->out->cap;
  dest_room(c, dest->out->cap);
  return TRUE;
}

static void
dest_term(j_compress_ptr c)
{
  ifg_jpeg_dest *dest = (ifg_jpeg_dest *) c->dest;
  dest->out->len = dest->out->cap - dest->pub.free_in_buffer;
}

/* Writes `mem` as a JPEG into `out`. Returns 0 or a failure kind; either way `out` holds what was
 * written, for the caller to keep or free. `out` lives in the caller's frame, so it is not among
 * the locals a longjmp back to the setjmp below leaves indeterminate. */
static int
jpeg_compress_into(VipsImage *mem, int gray, int quality, int progressive, ifg_out *out)
{
  struct jpeg_compress_struct c;
  ifg_jpeg_err err;
  ifg_jpeg_dest dest;

  memset(&err, 0, sizeof(err));
  memset(&dest, 0, sizeof(dest));
  err.domain = "jpegsave";
  c.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = ifg_jpeg_error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&c);
    /* libjpeg refuses an image past its size limit before it writes anything. */
    return ifg_jpeg_too_big(mem) ? IFG_ERR_LIMITS : IFG_ERR_ENCODE;
  }
  jpeg_create_compress(&c);
  dest.pub.init_destination = dest_init;
  dest.pub.empty_output_buffer = dest_empty;
  dest.pub.term_destination = dest_term;
  dest.out = out;
  c.dest = &dest.pub;
  c.image_width = (JDIMENSION) mem->Xsize;
  c.image_height = (JDIMENSION) mem->Ysize;
  c.input_components = gray ? 1 : 3;
  c.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  c.optimize_coding = TRUE;
  if (!gray && quality >= 90) {
    c.comp_info[0].h_samp_factor = 1;
    c.comp_info[0].v_samp_factor = 1;
  }
  if (progressive)
    jpeg_simple_progression(&c);
  /* Nothing to keep means no APP segment at all: jpegsave with "strip" writes no JFIF either. */
  c.write_JFIF_header = FALSE;
  jpeg_start_compress(&c, TRUE);
  size_t stride = VIPS_IMAGE_SIZEOF_LINE(mem);
  VipsPel *pixels = VIPS_IMAGE_ADDR(mem, 0, 0);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = pixels + stride * c.next_scanline;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  return 0;
}

int
ifg_jpeg_encode(VipsImage *in, int quality, int progressive, void **buf, size_t *len)
{
  VipsInterpretation interp = vips_image_guess_interpretation(in);
  int gray;

  if (in->BandFmt != VIPS_FORMAT_UCHAR || in->Coding != VIPS_CODING_NONE ||
      vips_image_get_page_height(in) != in->Ysize || ifg_has_metadata(in))
    return IFG_FALLBACK;
  if (in->Bands == 3 && interp == VIPS_INTERPRETATION_sRGB)
    gray = 0;
  else if (in->Bands == 1 && interp == VIPS_INTERPRETATION_B_W)
    gray = 1;
  else
    return IFG_FALLBACK;

  VipsImage *mem = vips_image_copy_memory(in);
  if (!mem)
    return ifg_fail(IFG_ERR_ENCODE);

  ifg_out out = {0};
  int kind = jpeg_compress_into(mem, gray, quality, progressive, &out);
  g_object_unref(mem);
  if (kind) {
    g_free(out.data);
    return ifg_fail(kind);
  }
  ifg_out_take(&out, buf, len);
  return 0;
}
