#!/usr/bin/env bash
# CPU per image of two or more image servers, measured in alternation on the same workload.
#
# The shared peer harness (../shared/bench/run.sh) measures every cell of one peer before the
# next peer, and this VM's speed drifts by 10-25 % over minutes, more than the differences we
# look for. Here all peers run at once and take turns every DURATION seconds, in an order that
# rotates each round, so drift hits them alike; the report gives medians and per-round ratios
# to the first peer.
#
#   # once: the harness's tools, thumbor's venv and the corpus images
#   cp -r ../shared/bench /tmp/peerbench && (cd /tmp/peerbench && ./run.sh install && ./run.sh images)
#   benches/peer/interleave.sh thumbor imgforge=target/release/imgforge
#   benches/peer/interleave.sh imgforge=/tmp/old/imgforge imgforge=target/release/imgforge  # A/B
#
# Peers: `thumbor` (the harness's thumbor 7.8 venv, its settings: Pillow engine, no storage, no
# result storage, baseline JPEG, --processes 2) and `imgforge=BIN` (BIN with
# benches/peer/imgforge.toml: 2 edge threads, 2 workers, no cache). The origin is an nginx on
# 127.0.0.1:18080 serving BENCH_DIR/img, like the harness's. Each request: fetch the source,
# resize to width WIDTH, encode at q80; `wrk -t2 -c2 -H "Connection: close"` as in the harness.
# CPU = utime + stime of each peer's process tree over the run / 2xx responses. Processes are
# started here and stopped by their PIDs only.
#
# Knobs: IMAGES ("large.jpg medium.jpg") FORMATS ("jpeg webp") WIDTH (400) ROUNDS (5) DURATION (10)
# WARMUP (3) CONCURRENCY (2) BENCH_DIR (/tmp/imgforge-bench) OUT (a TSV of every run).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/imgforge-bench}
IMAGES=${IMAGES:-"large.jpg medium.jpg"}
FORMATS=${FORMATS:-"jpeg webp"}
WIDTH=${WIDTH:-400}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-2}
OUT=${OUT:-$(mktemp /tmp/interleave.XXXXXX.tsv)}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/interleave.XXXXXX)
ORIGIN_PORT=18080
TICK_MS=$((1000 / $(getconf CLK_TCK)))

[ -d "$BENCH_DIR/img" ] || { echo "no $BENCH_DIR/img: run the harness's install and images first" >&2; exit 2; }
[ $# -ge 2 ] || { echo "usage: $0 PEER PEER... (thumbor | imgforge=BIN)" >&2; exit 2; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (the harness installs them)" >&2; exit 2; }

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do
    for p in $(tree "$pid"); do kill -TERM "$p" 2>/dev/null || true; done
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap stop_all EXIT INT TERM

# The PID and every descendant of it.
tree() {
  local p=$1 c
  [ -d /proc/"$p" ] || return 0
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}

# utime + stime of a process tree, in clock ticks.
ticks() {
  local sum=0 p f
  for p in $(tree "$1"); do
    # fields after the ")" that ends the command name: utime is the 12th, stime the 13th
    read -r -a f < <(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null) || continue
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}

wait_http() {
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.3
  done
  echo "no answer from $1" >&2
  exit 1
}

start() { "$@" >"$WORK/log.${#PIDS[@]}" 2>&1 & PIDS+=($!); }

# --- origin ---
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log stderr warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:$ORIGIN_PORT; root $BENCH_DIR/img; }
}
EOF
start nginx -p "$WORK/nginx" -c "$WORK/nginx.conf"
wait_http "http://127.0.0.1:$ORIGIN_PORT/medium.jpg"

# --- peers: name, pid, URL template ({img}, {fmt}) ---
NAMES=() PEER_PIDS=() URLS=()
port=19400
for spec in "$@"; do
  case $spec in
    thumbor)
      cat >"$WORK/thumbor.conf" <<EOF
LOADER = 'thumbor.loaders.http_loader'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
ENGINE = 'thumbor.engines.pil'
ALLOW_UNSAFE_URL = True
QUALITY = 80
WEBP_QUALITY = 80
PROGRESSIVE_JPEG = False
AUTO_WEBP = False
RESPECT_ORIENTATION = False
PRESERVE_EXIF_INFO = False
HTTP_LOADER_MAX_CLIENTS = 32
EOF
      start "$BENCH_DIR/py/thumbor/bin/thumbor" -i 127.0.0.1 -p "$port" -c "$WORK/thumbor.conf" -l warning --processes 2
      NAMES+=(thumbor)
      URLS+=("http://127.0.0.1:$port/unsafe/${WIDTH}x0/filters:quality(80):format({fmt})/127.0.0.1:$ORIGIN_PORT/{img}")
      ;;
    imgforge=*)
      bin=${spec#imgforge=}
      [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
      IMGFORGE_SERVER_LISTEN=127.0.0.1:$port IMGFORGE_SERVER_ADMIN_LISTEN=127.0.0.1:$((port + 90)) \
        IMGFORGE_SERVER_UPGRADE_SOCK=$WORK/upgrade.$port.sock \
        start "$bin" -c "$HERE/imgforge.toml"
      NAMES+=("imgforge#${#NAMES[@]}")
      URLS+=("http://127.0.0.1:$port/img/unsafe/rs:fit:$WIDTH:0/q:80/plain/{img}@{fmt}")
      echo "imgforge#$((${#NAMES[@]} - 1)) = $bin" >&2
      ;;
    *) echo "unknown peer: $spec" >&2; exit 2 ;;
  esac
  PEER_PIDS+=("${PIDS[-1]}")
  port=$((port + 1))
done

url() { local u=${URLS[$1]}; u=${u//\{img\}/$2}; echo "${u//\{fmt\}/$3}"; }

for i in "${!NAMES[@]}"; do
  wait_http "$(url "$i" medium.jpg jpeg)"
  # every peer answers the workload with a WIDTH px image of the asked format
  for img in $IMAGES; do
    for fmt in $FORMATS; do
      curl -fsS -o "$WORK/check" "$(url "$i" "$img" "$fmt")"
      hdr=$(vipsheader -f width "$WORK/check")
      [ "$hdr" = "$WIDTH" ] || { echo "${NAMES[$i]}: $img@$fmt is $hdr px wide" >&2; exit 1; }
    done
  done
done

printf 'workload\tround\tpeer\tok\treq_s\tcpu_ms_per_img\n' >"$OUT"
run_one() { # peer index, url -> "ok req/s cpu_ms_per_img"
  local i=$1 u=$2 before after res ok secs
  wrk -t"$CONCURRENCY" -c"$CONCURRENCY" -d"${WARMUP}s" -H 'Connection: close' "$u" >/dev/null
  before=$(ticks "${PEER_PIDS[$i]}")
  res=$(wrk -t"$CONCURRENCY" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 30s -H 'Connection: close' "$u")
  after=$(ticks "${PEER_PIDS[$i]}")
  ok=$(awk '/requests in/ {n=$1} /Non-2xx/ {bad=$NF} END {print n - bad}' <<<"$res")
  secs=$(awk '/requests in/ {sub(/s,?$/, "", $4); print $4}' <<<"$res")
  awk -v ok="$ok" -v s="$secs" -v t=$((after - before)) -v ms="$TICK_MS" \
    'BEGIN {printf "%d\t%.1f\t%.1f\n", ok, ok / s, ok ? t * ms / ok : 0}'
}

n=${#NAMES[@]}
for img in $IMAGES; do
  for fmt in $FORMATS; do
    for r in $(seq 1 "$ROUNDS"); do
      for k in $(seq 0 $((n - 1))); do
        i=$(((k + r) % n))
        line=$(run_one "$i" "$(url "$i" "$img" "$fmt")")
        printf '%s\t%s\t%s\t%s\n' "$img@$fmt" "$r" "${NAMES[$i]}" "$line" | tee -a "$OUT" >&2
      done
    done
  done
done

echo "every run: $OUT" >&2
python3 - "$OUT" "${NAMES[@]}" <<'EOF'
import csv, statistics, sys
path, names = sys.argv[1], sys.argv[2:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
base = names[0]
print(f"| workload (q80, c=2) | " + " | ".join(f"{n} CPU ms/img" for n in names)
      + " | " + " | ".join(f"{n} / {base}: median, per round" for n in names[1:]) + " |")
print("|---" * (len(names) * 2) + "|")
for w in dict.fromkeys(r["workload"] for r in rows):
    cpu = {n: {r["round"]: float(r["cpu_ms_per_img"]) for r in rows
               if r["workload"] == w and r["peer"] == n} for n in names}
    med = {n: statistics.median(cpu[n].values()) for n in names}
    cells = [f"{med[n]:.1f}" for n in names]
    for n in names[1:]:
        per = " ".join(f"{cpu[n][k] / cpu[base][k]:.2f}" for k in sorted(cpu[base], key=int))
        cells.append(f"**{med[n] / med[base]:.2f}×** ({per})")
    print(f"| {w} | " + " | ".join(cells) + " |")
EOF
