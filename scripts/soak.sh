#!/usr/bin/env bash
# Soak test (not part of CI): a release gateway on loopback in front of a local origin
# (python's file server over demo/images and the bad-input corpus), driven for SOAK_MINUTES
# by SOAK_CONCURRENCY keep-alive clients with a mix of good image requests (signed and cached,
# unsigned and uncached, several sizes and formats), passthrough, and bad traffic (bad
# signatures, corrupt sources, decompression bombs, oversized URLs and headers). The gateway's
# RSS is sampled every SOAK_SAMPLE_SECONDS.
#
#   scripts/soak.sh                         # 2 minutes
#   SOAK_MINUTES=5 SOAK_CONCURRENCY=16 scripts/soak.sh
#
# Prints the RSS series, status counts per traffic class and requests per second. Exits 1 if a
# good request (image or passthrough) got a 5xx or a connection error, if any class got a
# status outside its expected set (429 excepted: overload is a legitimate answer), or if RSS
# grew without bound: the average of the last third of the samples above 1.5 x the first
# third's. Samples of the first SOAK_WARMUP_SECONDS (default 20: the response cache filling up)
# are shown but not compared. SOAK_ACCESS_LOG=true turns the access log on (off by default: it
# would measure the disk). Uses CARGO_TARGET_DIR when set.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_MINUTES=${SOAK_MINUTES:-2}
SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-8}
SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-5}
SOAK_WARMUP_SECONDS=${SOAK_WARMUP_SECONDS:-20}

cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/imgforge"
work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/origin/images" "$work/origin/bad"
cp demo/images/*.jpg demo/images/*.png demo/images/*.webp "$work/origin/images/"
find tests/fixtures/bad -type f ! -name '*.py' -exec cp {} "$work/origin/bad/" \;
read -r origin_port port admin_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# The origin: python's file server, but with keep-alive and a listen backlog of 1024 (http.server's
# default of 5 refuses connections under load, which would show up as origin 502/504s).
python3 - "$work/origin" "$origin_port" >"$work/origin.log" 2>&1 <<'PY' &
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
handler = functools.partial(Quiet, directory=sys.argv[1])
Server(("127.0.0.1", int(sys.argv[2])), handler).serve_forever()
PY
pids+=($!)

cat >"$work/imgforge.toml" <<EOF
[server]
listen = ["127.0.0.1:$port"]
admin_listen = "127.0.0.1:$admin_port"
threads = 2
upgrade_sock = "$work/upgrade.sock"
pid_file = "$work/imgforge.pid"
max_connections = 256

[log]
format = "json"
level = "warn,access=info"
# The access log would measure the disk; the soak measures the gateway (SOAK_ACCESS_LOG=true to
# see the error of every 5xx when the soak fails).
access_log = ${SOAK_ACCESS_LOG:-false}

[transform]
workers = 2
queue = 64
timeout = "10s"
# Lets the 300-frame GIF reach the resolution limit (with the default, 1, its first frame is
# served: also safe, but then it is not a bomb).
max_animation_frames = 1000

[cache]
memory_size = "32MiB"

[[site]]
name = "soak"
hosts = ["soak.test"]
[site.origin]
servers = ["127.0.0.1:$origin_port"]

[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574"]
salt = ["68656C6C6F"]

[[site.route]]
prefix = "/nc"
kind = "imgproxy"
allow_unsigned = true
cache = false

[[site.route]]
prefix = "/"
EOF

"$bin" -c "$work/imgforge.toml" >"$work/imgforge.log" 2>&1 &
gw=$!
pids+=("$gw")
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null

echo "soak: $SOAK_MINUTES min, $SOAK_CONCURRENCY clients, gateway pid $gw on 127.0.0.1:$port, commit $(git rev-parse --short HEAD)"
status=0
python3 - "$port" "$gw" "$SOAK_MINUTES" "$SOAK_CONCURRENCY" "$SOAK_SAMPLE_SECONDS" \
  "$SOAK_WARMUP_SECONDS" <<'PY' || status=$?
import base64, collections, hashlib, hmac, http.client, random, sys, threading, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
minutes, clients = float(sys.argv[3]), int(sys.argv[4])
sample_every, warmup = float(sys.argv[5]), float(sys.argv[6])
KEY, SALT = b"secret", b"hello"
IMAGES = ["images/storm.jpg", "images/raindrops.jpg", "images/twowings.jpg",
          "images/mars.png", "images/twowings.webp"]
CORRUPT = ["bad/truncated.jpg", "bad/corrupt_header.jpg", "bad/bad_crc.png",
           "bad/polyglot.gif", "bad/html.jpg", "bad/empty.jpg", "bad/image.svg"]
BOMBS = ["bad/bomb.png", "bad/bomb.jpg", "bad/bomb.gif", "bad/frames.gif"]

def signed(path):
    mac = hmac.new(KEY, SALT + path.encode(), hashlib.sha256).digest()
    return "/img/" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode() + path

def good_cached(r):
    w = r.choice([80, 160, 320])
    return signed(f"/rs:fit:{w}:{w}/plain/{r.choice(IMAGES)}@{r.choice(['jpg', 'webp'])}"), {}

def good_transform(r):
    opts = r.choice(["rs:fit:{w}:{w}", "rs:fill:{w}:{h}/g:sm", "w:{w}/bl:1", "w:{w}/sh:0.5"])
    opts = opts.format(w=r.randint(40, 640), h=r.randint(40, 480))
    fmt = r.choice(["jpg", "webp", "png"] * 6 + ["avif"])
    return f"/nc/unsafe/{opts}/plain/{r.choice(IMAGES)}@{fmt}", {}

def passthrough(r):
    return "/" + r.choice(IMAGES), {}

def bad_signature(r):
    return signed(f"/w:100/plain/{r.choice(IMAGES)}").replace("/img/", "/img/A", 1), {}

def corrupt(r):
    return f"/nc/unsafe/w:100/plain/{r.choice(CORRUPT)}", {}

def bomb(r):
    return f"/nc/unsafe/w:100/plain/{r.choice(BOMBS)}", {}

def oversized(r):
    if r.random() < 0.5:
        return "/nc/unsafe/w:10/plain/" + "a" * 16384 + ".jpg", {}
    return "/" + IMAGES[0], {"X-Big": "b" * 65536}

# (class, weight, expected statuses, good: a 5xx or error fails the soak)
CLASSES = [
    ("good_cached", 30, {200}, True, good_cached),
    ("good_transform", 25, {200}, True, good_transform),
    ("passthrough", 20, {200}, True, passthrough),
    ("bad_signature", 5, {403}, False, bad_signature),
    ("corrupt", 8, {415, 422}, False, corrupt),
    ("bomb", 7, {422}, False, bomb),
    ("oversized", 5, {414, 431}, False, oversized),
]
WEIGHTED = [c for c in CLASSES for _ in range(c[1])]
counts = collections.defaultdict(collections.Counter)
examples = {}  # (class, status) -> one path, to show for unexpected statuses
lock = threading.Lock()
deadline = time.time() + minutes * 60

def client(seed):
    r = random.Random(seed)
    conn = None
    while time.time() < deadline:
        name, _, _, _, make = r.choice(WEIGHTED)
        path, headers = make(r)
        headers["Host"] = "soak.test"
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # the status of a failed exchange is its exception's name
            status = type(e).__name__
            conn.close()
            conn = None
        with lock:
            counts[name][status] += 1
            examples.setdefault((name, status), path[:120])

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

start = time.time()
threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
for t in threads:
    t.start()
samples = []
while time.time() < deadline:
    samples.append((time.time() - start, rss_kib()))
    time.sleep(sample_every)
for t in threads:
    t.join()
samples.append((time.time() - start, rss_kib()))
elapsed = time.time() - start

print("RSS (MiB) every %gs:" % sample_every)
print("  " + " ".join("%d" % (kib / 1024) for _, kib in samples))
steady = [kib for t, kib in samples if t >= warmup] or [kib for _, kib in samples]
third = max(1, len(steady) // 3)
first = sum(steady[:third]) / third / 1024
last = sum(steady[-third:]) / third / 1024
print(f"RSS: start {samples[0][1] / 1024:.0f} MiB, peak {max(k for _, k in samples) / 1024:.0f} MiB, "
      f"end {samples[-1][1] / 1024:.0f} MiB; after {warmup:g}s warm-up: first third {first:.0f} MiB, "
      f"last third {last:.0f} MiB ({last / first:.2f}x)")
failures = []
total = 0
print("status counts per class:")
for name, _, expected, good, _ in CLASSES:
    c = counts[name]
    total += sum(c.values())
    print(f"  {name:15} " + ", ".join(f"{s}: {n}" for s, n in sorted(c.items(), key=str)))
    for s, n in c.items():
        bad_good = good and (not isinstance(s, int) or s >= 500)
        if bad_good or (s not in expected and s != 429):
            failures.append(f"{name}: {n} x {s} (e.g. {examples[(name, s)]})")
print(f"requests: {total} in {elapsed:.0f} s ({total / elapsed:.0f}/s)")
if last > 1.5 * first:
    failures.append(f"RSS grew: last third {last:.0f} MiB > 1.5 x first third {first:.0f} MiB")
if failures:
    print("SOAK FAILED: " + "; ".join(failures))
    sys.exit(1)
print("soak: ok")
PY

if ! kill -0 "$gw" 2>/dev/null; then
  echo "soak: the gateway died"; tail -n 40 "$work/imgforge.log"; exit 1
fi
if [ "$status" -ne 0 ]; then
  grep -E '"status":5|"level":"(WARN|ERROR)"' "$work/imgforge.log" | grep -v compression_dict |
    head -n 20 || tail -n 20 "$work/imgforge.log"
fi
exit "$status"
