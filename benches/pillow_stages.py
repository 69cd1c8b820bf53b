"""Stage costs of thumbor's Pillow pipeline for `400x0` at quality 80, next to
benches/pipeline_stages.c: an A/B probe for docs/performance.md, not part of CI.

    python3 benches/pillow_stages.py ../shared/corpus/medium.jpg jpeg 20
    python3 benches/pillow_stages.py ../shared/corpus/medium.jpg webp 10

Run it with the Python that runs thumbor (the peer harness's venv), so that Pillow's own
libjpeg-turbo and libwebp are measured. Stages as thumbor's PIL engine runs them: open and
`draft` (libjpeg DCT scaling) then load, LANCZOS resize, save (JPEG with optimize=True as
thumbor sets, or WebP at the default method 4). CPU ms per image, median of five batches.
"""
import io
import sys
import time

from PIL import Image


def batch(buf, fmt, n):
    spent = {"decode": 0.0, "resize": 0.0, "encode": 0.0}
    for _ in range(n):
        c0 = time.process_time()
        im = Image.open(io.BytesIO(buf))
        w, h = im.size
        size = (400, round(h * 400 / w))
        im.draft(None, size)
        im.load()
        c1 = time.process_time()
        small = im.resize(size, Image.Resampling.LANCZOS)
        c2 = time.process_time()
        out = io.BytesIO()
        if fmt == "jpeg":
            small.save(out, "JPEG", quality=80, optimize=True)
        else:
            small.save(out, "WEBP", quality=80)
        c3 = time.process_time()
        spent["decode"] += c1 - c0
        spent["resize"] += c2 - c1
        spent["encode"] += c3 - c2
    return {k: v * 1000 / n for k, v in spent.items()}


def main():
    path, fmt = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    buf = open(path, "rb").read()
    runs = [batch(buf, fmt, n) for _ in range(5)]
    for stage in ("decode", "resize", "encode"):
        print(f"{stage:<7} {sorted(r[stage] for r in runs)[2]:6.2f} ms")
    print(f"total   {sorted(sum(r.values()) for r in runs)[2]:6.2f} ms")


if __name__ == "__main__":
    main()
