/* Stage costs of imgforge's medium-JPEG pipeline, next to benches/pillow_stages.py (thumbor's
 * Pillow pipeline) — an A/B probe for docs/performance.md, not part of the build or CI.
 *
 *   gcc -O2 benches/pipeline_stages.c -o /tmp/pipeline_stages \
 *       $(pkg-config --cflags --libs vips libwebp) -ljpeg
 *   /tmp/pipeline_stages ../shared/corpus/medium.jpg 30
 *
 * Stages as the engine runs them for `rs:fit:400:0/q:80`: libjpeg decode at 1/4 straight into
 * memory (src/transform/vips/jpeg.c), libvips resize to 400 px rendered to memory, then each
 * encoder on the same pixels: libvips jpegsave with and without optimize_coding, libjpeg
 * called directly, libvips webpsave and libwebp called directly (what libvips adds around the
 * codec). CPU ms per image, one thread, libvips cache off, first iteration excluded. 3-component
 * JPEGs only; errors are not handled: a probe, not a loader. */
#include <stdio.h> /* before jpeglib.h, which uses FILE and size_t */
#include <stdlib.h>
#include <time.h>
#include <vips/vips.h>
#include <jpeglib.h>
#include <webp/encode.h>

enum { DECODE, RESIZE, VIPS_JPEG_OPT, VIPS_JPEG, LIBJPEG_OPT, VIPS_WEBP, LIBWEBP, STAGES };
static const char *names[STAGES] = {"decode 1/4 (libjpeg)", "resize to 400 px (libvips)",
    "jpegsave optimize_coding", "jpegsave", "libjpeg optimize_coding", "webpsave effort 4",
    "libwebp method 4"};

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void free_pixels(VipsImage *image, gpointer pixels) {
  (void) image;
  g_free(pixels);
}

static VipsImage *decode(const unsigned char *buf, size_t len) {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr err;
  d.err = jpeg_std_error(&err);
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, buf, len);
  jpeg_read_header(&d, TRUE);
  d.scale_num = 1;
  d.scale_denom = 4;
  d.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d);
  size_t stride = (size_t) d.output_width * 3;
  unsigned char *pixels = g_malloc(stride * d.output_height);
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = pixels + stride * d.output_scanline;
    jpeg_read_scanlines(&d, &row, 1);
  }
  int w = d.output_width, h = d.output_height;
  jpeg_finish_decompress(&d);
  jpeg_destroy_decompress(&d);
  VipsImage *image = vips_image_new_from_memory(pixels, stride * h, w, h, 3, VIPS_FORMAT_UCHAR);
  g_signal_connect(image, "postclose", G_CALLBACK(free_pixels), pixels);
  return image;
}

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
  if (argc != 3 || VIPS_INIT(argv[0])) {
    fprintf(stderr, "usage: %s FILE.jpg ITERATIONS\n", argv[0]);
    return 2;
  }
  vips_cache_set_max(0);
  vips_concurrency_set(1);
  gchar *buf;
  gsize len;
  if (!g_file_get_contents(argv[1], &buf, &len, NULL))
    return 1;
  int n = atoi(argv[2]);
  double total[STAGES] = {0};
  size_t bytes[STAGES] = {0};
  for (int i = 0; i <= n; i++) {
    double t[STAGES + 1];
    t[0] = cpu_ms();
    VipsImage *in = decode((const unsigned char *) buf, len);
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
