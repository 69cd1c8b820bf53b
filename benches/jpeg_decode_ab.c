/* Where does libvips's JPEG shrink-on-load spend time beyond libjpeg itself? Not part of the
 * build or CI: an A/B probe for docs/performance.md ("Transform", CPU on large JPEGs).
 *
 *   gcc -O2 benches/jpeg_decode_ab.c -o /tmp/jpeg_decode_ab $(pkg-config --cflags --libs vips) -ljpeg
 *   /tmp/jpeg_decode_ab ../shared/corpus/large.jpg 0 20 8   # libvips jpegload shrink=8
 *   /tmp/jpeg_decode_ab ../shared/corpus/large.jpg 1 20 8   # libjpeg 1/8 straight into memory
 *
 * Both then resize to 400 px wide and encode JPEG Q80 with optimize_coding, like an imgforge
 * `rs:fit:400:0/q:80` job, in one thread with the libvips cache off; prints CPU ms per image
 * (first iteration excluded). Mode 1 handles 3-component JPEGs only and ignores errors: a probe,
 * not a loader. */
#include <stdio.h> /* before jpeglib.h, which uses FILE and size_t */
#include <stdlib.h>
#include <vips/vips.h>
#include <jpeglib.h>

#include "probe_jpeg.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s FILE.jpg MODE(0|1) ITERATIONS SHRINK\n", argv[0]);
    return 2;
  }
  gsize len;
  gchar *buf = probe_start(argv[0], argv[1], &len);
  if (!buf)
    return 1;
  int mode = atoi(argv[2]), n = atoi(argv[3]), shrink = atoi(argv[4]);
  double t0 = 0;
  size_t out_len = 0;
  for (int i = 0; i <= n; i++) {
    if (i == 1)
      t0 = cpu_ms();
    VipsImage *in = NULL, *resized = NULL;
    void *out;
    if (mode == 0) {
      if (vips_jpegload_buffer(buf, len, &in, "access", VIPS_ACCESS_SEQUENTIAL, "shrink", shrink,
              NULL))
        vips_error_exit(NULL);
    } else {
      in = libjpeg_direct((const unsigned char *) buf, len, shrink);
    }
    if (vips_resize(in, &resized, 400.0 / in->Xsize, NULL) ||
        vips_jpegsave_buffer(resized, &out, &out_len, "Q", 80, "optimize_coding", TRUE, "strip",
            TRUE, NULL))
      vips_error_exit(NULL);
    g_free(out);
    g_object_unref(resized);
    g_object_unref(in);
  }
  printf("mode=%d %.1f ms/img (%zu bytes)\n", mode, (cpu_ms() - t0) / n, out_len);
  return 0;
}
