/* The engine's own Lanczos-3 downscale (crates/vips/src/resample.c) against libvips's
 * vips_resize on the same memory image — an A/B probe for docs/performance.md, not part of the
 * build or CI.
 *
 *   gcc -O3 -I crates/vips/src benches/resample_ab.c crates/vips/src/{glue,ops,jpeg,webp,resample}.c \
 *       -o /tmp/resample_ab $(pkg-config --cflags --libs vips libwebp) -ljpeg -lm
 *   /tmp/resample_ab ../shared/corpus/medium.jpg 4 400 50
 *
 * Decodes the JPEG at 1/SHRINK (libjpeg into memory, as jpeg.c), then alternates the two
 * resizes to WIDTH px, each rendered to memory, and prints CPU ms per resize (first round
 * excluded), the output sizes and how far apart the pixels are. */
#include <stdio.h> /* before jpeglib.h, which uses FILE and size_t */
#include <stdlib.h>
#include <vips/vips.h>
#include <jpeglib.h>

#include "glue.h"
#include "probe_jpeg.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s FILE.jpg SHRINK WIDTH ITERATIONS\n", argv[0]);
    return 2;
  }
  gsize len;
  gchar *buf = probe_start(argv[0], argv[1], &len);
  if (!buf)
    return 1;
  int shrink = atoi(argv[2]), width = atoi(argv[3]), n = atoi(argv[4]);
  VipsImage *in = libjpeg_direct((const unsigned char *) buf, len, shrink);
  double scale = (double) width / in->Xsize;
  double total[2] = {0};
  VipsImage *last[2] = {NULL, NULL};
  for (int i = 0; i <= n; i++) {
    for (int which = 0; which < 2; which++) {
      double t0 = cpu_ms();
      VipsImage *out = NULL, *mem = NULL;
      if (which == 0) {
        vips_resize(in, &out, scale, NULL);
        mem = vips_image_copy_memory(out);
        g_object_unref(out);
      } else if (ifg_resample_down(in, &mem, scale, scale)) {
        fprintf(stderr, "resample failed: %s\n", vips_error_buffer());
        return 1;
      }
      if (i > 0)
        total[which] += cpu_ms() - t0;
      if (last[which])
        g_object_unref(last[which]);
      last[which] = mem;
    }
  }
  printf("input %dx%d, scale %.4f\n", in->Xsize, in->Ysize, scale);
  printf("vips_resize        %6.3f ms  %dx%d\n", total[0] / n, last[0]->Xsize, last[0]->Ysize);
  printf("ifg_resample_down  %6.3f ms  %dx%d  (%.2fx)\n", total[1] / n, last[1]->Xsize,
      last[1]->Ysize, total[1] / total[0]);
  if (last[0]->Xsize == last[1]->Xsize && last[0]->Ysize == last[1]->Ysize) {
    const VipsPel *a = vips_image_get_data(last[0]), *b = vips_image_get_data(last[1]);
    size_t count = VIPS_IMAGE_SIZEOF_IMAGE(last[0]);
    double sum = 0;
    int max = 0;
    for (size_t i = 0; i < count; i++) {
      int d = abs((int) a[i] - (int) b[i]);
      sum += d;
      max = d > max ? d : max;
    }
    printf("pixels: mean |diff| %.3f, max %d\n", sum / count, max);
  }
  return 0;
}
