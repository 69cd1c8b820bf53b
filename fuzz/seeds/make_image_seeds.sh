#!/usr/bin/env bash
# Regenerates fuzz/seeds/image_decode/: tiny images of every accepted source format, each
# prefixed by the option-selector byte the image_decode target reads first. Needs `vips`; the
# pixels are noise, so the bytes differ on every run.
set -euo pipefail
cd "$(dirname "$0")/image_decode"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vips gaussnoise "$tmp/n.v" 6 4
vips bandjoin "$tmp/n.v $tmp/n.v $tmp/n.v" "$tmp/rgb.v"
vips bandjoin "$tmp/rgb.v $tmp/n.v" "$tmp/rgba.v"
vips cast "$tmp/rgb.v" "$tmp/rgb8.v" uchar
vips cast "$tmp/rgba.v" "$tmp/rgba8.v" uchar
i=0
for out in "jpg[Q=50,strip]" "png[compression=9,strip]" "webp[Q=50,strip]" "gif" "tif[compression=deflate]"; do
  ext=${out%%\[*}
  src=$tmp/rgb8.v
  if [ "$ext" = png ] || [ "$ext" = webp ]; then src=$tmp/rgba8.v; fi
  vips copy "$src" "$tmp/seed.$out"
  { printf '%b' "\\x$(printf %02x "$i")"; cat "$tmp/seed.$ext"; } > "seed.$ext"
  i=$((i + 1))
done
# A two-frame animation (frames stacked vertically, page-height 2).
vips copy "$tmp/rgb8.v" "$tmp/anim.gif[page-height=2]"
{ printf '\x03'; cat "$tmp/anim.gif"; } > anim.gif
# A JPEG cut short, for the error paths.
head -c 120 seed.jpg > truncated.jpg
wc -c -- *
