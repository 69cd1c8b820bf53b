/* Stage costs of imgforge's medium-JPEG pipeline, next to benches/pillow_stages.py (thumbor's
 * Pillow pipeline) — an A/B probe for docs/performance.md, not part of the build or CI.
 *
 *   gcc -O2 benches/pipeline_stages.c -o /tmp/pipeline_stages \
 *       $(pkg-config --cflags --libs vips libwebp) -ljpeg
 *   /tmp/pipeline_stages ../shared/corpus/medium.jpg 30
 *
 * Stages as the engine runs them for `rs:fit:400:0/q:80`: libjpeg decode at 1/4 straight into
 * memory (crates/vips/src/jpeg.c), libvips resize to 400 px rendered to memory, then each
 * encoder on the same pixels: libvips jpegsave with and without optimize_coding, libjpeg
 * called directly, libvips webpsave and libwebp called directly (what libvips adds around the
 * codec). CPU ms per image, one thread, libvips cache off, first iteration excluded. 3-component
 * JPEGs only; errors are not handled: a probe, not a loader. */
#include <stdio.h> /* before jpeglib.h, which uses FILE and size_t */
#include <stdlib.h>
#include <vips/vips.h>
#include <jpeglib.h>
#include <webp/encode.h>

enum { DECODE, RESIZE, VIPS_JPEG_OPT, VIPS_JPEG, LIBJPEG_OPT, VIPS_WEBP, LIBWEBP, STAGES };
static const char *names[STAGES] = {"decode 1/4 (libjpeg)", "resize to 400 px (libvips)",
    "jpegsave optimize_coding", "jpegsave", "libjpeg optimize_coding", "webpsave effort 4",
    "libwebp method 4"};

#include "probe_jpeg.h"

static size_t libjpeg_encode(VipsImage *image) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  unsigned char *out = NULL;
  unsigned long out_len = 0;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &out, &out_len);
  c.image_width = image->Xsize;
  c.image_height = image->Ysize;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 80, TRUE);
  c.optimize_coding = TRUE;
  jpeg_start_compress(&c, TRUE);
  const unsigned char *pixels = vips_image_get_data(image);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW) pixels + (size_t) image->Xsize * 3 * c.next_scanline;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(out);
  return out_len;
}

static size_t libwebp_encode(VipsImage *image) {
  WebPConfig config;
  WebPPicture picture;
  WebPMemoryWriter writer;
  WebPConfigPreset(&config, WEBP_PRESET_DEFAULT, 80);
  config.method = 4;
  WebPPictureInit(&picture);
  picture.width = image->Xsize;
  picture.height = image->Ysize;
  WebPPictureImportRGB(&picture, vips_image_get_data(image), image->Xsize * 3);
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  WebPEncode(&config, &picture);
  size_t len = writer.size;
  WebPMemoryWriterClear(&writer);
  WebPPictureFree(&picture);
  return len;
}

static size_t vips_save(VipsImage *image, int stage) {
  void *out = NULL;
  size_t len = 0;
  if (stage == VIPS_WEBP)
    vips_webpsave_buffer(image, &out, &len, "Q", 80, "effort", 4, "strip", TRUE, NULL);
  else
    vips_jpegsave_buffer(image, &out, &len, "Q", 80, "optimize_coding", stage == VIPS_JPEG_OPT,
        "strip", TRUE, NULL);
  g_free(out);
  return len;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FILE.jpg ITERATIONS\n", argv[0]);
    return 2;
  }
  gsize len;
  gchar *buf = probe_start(argv[0], argv[1], &len);
  if (!buf)
    return 1;
  int n = atoi(argv[2]);
  double total[STAGES] = {0};
  size_t bytes[STAGES] = {0};
  for (int i = 0; i <= n; i++) {
    double t[STAGES + 1];
    t[0] = cpu_ms();
    VipsImage *in = libjpeg_direct((const unsigned char *) buf, len, 4);
    t[1] = cpu_ms();
    VipsImage *resized = NULL;
    vips_resize(in, &resized, 400.0 / in->Xsize, NULL);
    VipsImage *pixels = vips_image_copy_memory(resized);
    t[2] = cpu_ms();
    for (int s = VIPS_JPEG_OPT; s < STAGES; s++) {
      bytes[s] = s == LIBJPEG_OPT ? libjpeg_encode(pixels)
          : s == LIBWEBP          ? libwebp_encode(pixels)
                                  : vips_save(pixels, s);
      t[s + 1] = cpu_ms();
    }
    if (i > 0)
      for (int s = 0; s < STAGES; s++)
        total[s] += t[s + 1] - t[s];
    g_object_unref(pixels);
    g_object_unref(resized);
    g_object_unref(in);
  }
  for (int s = 0; s < STAGES; s++) {
    printf("%-28s %6.2f ms", names[s], total[s] / n);
    if (bytes[s])
      printf("  %zu bytes", bytes[s]);
    printf("\n");
  }
  return 0;
}
