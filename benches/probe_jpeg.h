/* Shared by the C probes in benches/ (jpeg_decode_ab.c, pipeline_stages.c): process CPU time and
 * a libjpeg decode at 1/shrink straight into a libvips memory image, as crates/vips/src/jpeg.c
 * does for 3-component JPEGs (no error handling: probes, not loaders). Include after vips.h and
 * jpeglib.h. */
#ifndef IMGFORGE_PROBE_JPEG_H
#define IMGFORGE_PROBE_JPEG_H

#include <time.h>

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void free_pixels(VipsImage *image, gpointer pixels) {
  (void) image;
  g_free(pixels);
}

static VipsImage *libjpeg_direct(const unsigned char *buf, size_t len, int shrink) {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr err;
  d.err = jpeg_std_error(&err);
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, buf, len);
  jpeg_read_header(&d, TRUE);
  d.scale_num = 1;
  d.scale_denom = shrink;
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

/* Starts libvips as the engine runs it (cache off, one thread per operation) and reads `path`;
 * NULL (with a message) when either fails. */
static gchar *probe_start(const char *argv0, const char *path, gsize *len) {
  gchar *buf;
  if (VIPS_INIT(argv0)) {
    fprintf(stderr, "libvips init failed\n");
    return NULL;
  }
  vips_cache_set_max(0);
  vips_concurrency_set(1);
  if (!g_file_get_contents(path, &buf, len, NULL)) {
    fprintf(stderr, "cannot read %s\n", path);
    return NULL;
  }
  return buf;
}

#endif
