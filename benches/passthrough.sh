#!/usr/bin/env bash
# benches/passthrough.sh: passthrough benchmark, imgforge vs nginx proxy_pass.
#
# One ~48 KB object (default ../shared/corpus/pass_50k.jpg beside the repository) served by a static nginx origin,
# fetched through (a) nginx proxy_pass with upstream keepalive and (b) imgforge's plain proxy
# route, both on this machine, both fetching from the same origin on every request (no cache
# anywhere). Load: wrk (no Lua script) at each concurrency, keep-alive connections, a warm-up
# before every measured run, runs alternated between the proxies (A B A B ...) so drift hits all
# alike. Reports medians of RUNS runs: ok req/s, p50, p99, proxy CPU per request, and the ratio
# imgforge / nginx.
#
# Variants (VARIANTS): nginx, floor (benches/floor: Pingora alone, a proxy with only
# upstream_peer — the framework's floor), imgforge (access logs off: the headline), nginx_log (nginx with
# a JSON access log to a file) and imgforge_log (imgforge with access_log = true, JSON lines
# to a file). With BASE_BIN (another imgforge build, e.g. of the previous commit) also base and
# base_log, the same two configs on that binary: an A/B of two builds in one run, the
# imgforge rows then compared with the base rows.
#
# Usage:   benches/passthrough.sh
#          DURATION=10 RUNS=3 CONCURRENCY="2 8" benches/passthrough.sh
# Knobs:   DURATION (s, 10)  WARMUP (s, 3)  RUNS (3)  CONCURRENCY ("2 8")  THREADS (imgforge
#          [server] threads, 2)  VARIANTS ("nginx imgforge nginx_log imgforge_log")
#          OBJECT (file to serve)  BIN (imgforge binary)  BUILD (1: cargo build --release first)
#          BASE_BIN (second imgforge binary for the base/base_log variants)  BASE_REV (its label)
#          OUT_DIR (target/bench)  WRK_TIMEOUT (10s)  KEEP_RUN (1: keep the run dir with logs)
#          IMGFORGE_REV (label for the binary in the report; default: git HEAD of this checkout)
#          QUIET_BUSY_PCT (20)  QUIET_SECS (3)  QUIET_MAX_WAIT (60)  BG_RETRY_PCT (20)  MAX_ATTEMPTS (2):
#          other sessions may share the cores; each run waits for a quiet machine and a run
#          spoiled by foreign load is discarded (kept in passthrough_runs_discarded.tsv) and repeated.
# Output:  markdown on stdout and in $OUT_DIR/passthrough.md; every run in
#          $OUT_DIR/passthrough_runs.tsv; progress on stderr.
#
# Hygiene: loopback only (127.0.0.1); every process it starts is recorded by PID and stopped by
# PID on exit (trap); every wrk run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The knobs given in the environment, for the report's "command" line.
CMD_ENV=""
for k in DURATION WARMUP RUNS CONCURRENCY THREADS VARIANTS OBJECT BIN BASE_BIN BASE_REV BUILD IMGFORGE_REV WRK_TIMEOUT \
  QUIET_BUSY_PCT QUIET_SECS QUIET_MAX_WAIT BG_RETRY_PCT MAX_ATTEMPTS; do
  if [ -n "${!k+x}" ]; then CMD_ENV+="$k=${!k@Q} "; fi
done
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-"2 8"}
THREADS=${THREADS:-2}
VARIANTS=${VARIANTS:-"nginx floor imgforge nginx_log imgforge_log"}
FLOOR=${FLOOR:-$ROOT/target/release/imgforge-floor}
OBJECT=${OBJECT:-$ROOT/../shared/corpus/pass_50k.jpg}
BIN=${BIN:-$ROOT/target/release/imgforge}
BASE_BIN=${BASE_BIN:-}
BASE_REV=${BASE_REV:-base}
BUILD=${BUILD:-1}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
KEEP_RUN=${KEEP_RUN:-0}
QUIET_BUSY_PCT=${QUIET_BUSY_PCT:-20}   # before each run, wait until the machine is at most this busy ...
QUIET_SECS=${QUIET_SECS:-3}            # ... for this many consecutive seconds ...
QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-60}   # ... but no longer than this (then run anyway, flagged by bg CPU %)
BG_RETRY_PCT=${BG_RETRY_PCT:-20}       # a run during which foreign load exceeded this is repeated ...
MAX_ATTEMPTS=${MAX_ATTEMPTS:-2}        # ... at most this many times in all
HOST=127.0.0.1
VHOST=bench.test

log() { printf '[passthrough %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ tools
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
ensure_tools() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && ! dpkg -s nginx-light >/dev/null 2>&1; then
    missing+=(nginx-light)
  fi
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
  fi
}
ensure_tools
NGINX=${NGINX:-$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || die "nginx not found"
[ -r "$OBJECT" ] || die "object $OBJECT not readable"
OBJECT_BYTES=$(stat -c %s "$OBJECT")
OBJECT_DIR=$(cd "$(dirname "$OBJECT")" && pwd)
OBJECT_NAME=$(basename "$OBJECT")

if [ "$BUILD" = 1 ]; then
  log "cargo build --release (no-op when up to date)"
  (cd "$ROOT" && cargo build --release -p imgforge -p imgforge-floor >&2)
fi
[ -x "$BIN" ] || die "imgforge binary $BIN missing (BUILD=1 builds it)"
[ -z "$BASE_BIN" ] || [ -x "$BASE_BIN" ] || die "BASE_BIN $BASE_BIN is not executable"
[[ " $VARIANTS " != *" base"* ]] || [ -n "$BASE_BIN" ] || die "the base variants need BASE_BIN"

# ------------------------------------------------------------------ processes (by PID only)
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/imgforge-passthrough.XXXXXX")
declare -A PID_OF=()
declare -A PID_EXE=()

# start_bg NAME LOGFILE CMD... : start in the background, record the PID
start_bg() {
  local name=$1 out=$2; shift 2
  "$@" >>"$out" 2>&1 &
  PID_OF[$name]=$!
  PID_EXE[$name]=$(basename "$1")
  log "started $name pid=${PID_OF[$name]}"
}

# is_ours PID EXE : PID is alive and still runs EXE (guards against PID reuse)
is_ours() {
  local cmd
  [ -r "/proc/$1/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$2"* ]]
}

cleanup() {
  local rc=$? name pid i
  trap - EXIT INT TERM
  for name in "${!PID_OF[@]}"; do
    pid=${PID_OF[$name]}
    if is_ours "$pid" "${PID_EXE[$name]}"; then kill "$pid" 2>/dev/null || true; fi
  done
  for name in "${!PID_OF[@]}"; do
    pid=${PID_OF[$name]}
    for i in $(seq 1 100); do
      is_ours "$pid" "${PID_EXE[$name]}" || break
      sleep 0.1
    done
    if is_ours "$pid" "${PID_EXE[$name]}"; then
      log "$name pid=$pid still running after 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP_RUN" = 1 ]; then log "run dir kept: $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tree_pids PID : PID and all its descendants
tree_pids() {
  local p c kids
  for p in "$@"; do
    echo "$p"
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
    for c in $kids; do tree_pids "$c"; done
  done
}
# tree_cpu_ticks PID : utime+stime of PID's process tree (clock ticks)
tree_cpu_ticks() {
  local total=0 p st f
  for p in $(tree_pids "$1"); do
    read -r st <"/proc/$p/stat" 2>/dev/null || continue
    st=${st##*) }
    read -r -a f <<<"$st"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
# machine_ticks -> "BUSY TOTAL" (all CPUs; busy = user+nice+system, irq/softirq/steal excluded)
machine_ticks() {
  local _cpu u n s i w q sq st _rest
  read -r _cpu u n s i w q sq st _rest </proc/stat
  echo "$((u + n + s)) $((u + n + s + i + w + q + sq + st))"
}
# idle_pct SECONDS : machine idle % (idle+iowait) over a short sample
idle_pct() {
  local _c u n s i w q sq st _r a b
  read -r _c u n s i w q sq st _r </proc/stat
  a=$((i + w)); b=$((u + n + s + i + w + q + sq + st))
  sleep "$1"
  read -r _c u n s i w q sq st _r </proc/stat
  awk -v di=$((i + w - a)) -v dt=$((u + n + s + i + w + q + sq + st - b)) 'BEGIN{printf "%.0f", (dt > 0 ? di * 100 / dt : 0)}'
}

# wait_quiet : wait (bounded) until the machine has been quiet for QUIET_SECS seconds
wait_quiet() {
  local waited=0 quiet=0 busy
  while :; do
    busy=$((100 - $(idle_pct 1)))
    waited=$((waited + 1))
    if ((busy <= QUIET_BUSY_PCT)); then
      quiet=$((quiet + 1))
      ((quiet >= QUIET_SECS)) && return 0
      continue
    fi
    quiet=0
    if ((waited >= QUIET_MAX_WAIT)); then
      log "machine still ${busy}% busy after ${waited}s; running anyway"
      return 0
    fi
    ((waited % 30 == 1)) && log "machine ${busy}% busy with foreign load; waiting (max ${QUIET_MAX_WAIT}s)"
  done
}

# free_port VAR : sets VAR to an unused loopback TCP port (not handed out before in this run)
declare -A TAKEN=()
free_port() {
  local p _try
  for _try in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    [ -z "${TAKEN[$p]:-}" ] || continue
    if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      TAKEN[$p]=1
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}

wait_http() { # URL SECONDS [HOST]
  local url=$1 secs=$2 host=${3:-$VHOST} i
  for i in $(seq 1 $((secs * 10))); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" --max-time 2 "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.1
  done
  die "$url did not answer 200 within ${secs}s"
}

for var in ORIGIN_PORT NGINX_PORT NGINX_LOG_PORT IMGF_PORT IMGF_ADMIN IMGF_LOG_PORT IMGF_LOG_ADMIN \
  BASE_PORT BASE_ADMIN BASE_LOG_PORT BASE_LOG_ADMIN; do
  free_port "$var"
done

# ------------------------------------------------------------------ configs
nginx_common() { # PREFIX
  cat <<EOF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  default_type application/octet-stream;
  types { image/jpeg jpg jpeg; }
  access_log off;
  client_body_temp_path $1/client_body; proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi; uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
EOF
}

mkdir -p "$RUN_DIR/origin" "$RUN_DIR/proxy"
{
  nginx_common "$RUN_DIR/origin"
  cat <<EOF
  sendfile on; tcp_nopush on;
  server {
    listen $HOST:$ORIGIN_PORT;
    root $OBJECT_DIR;
  }
}
EOF
} >"$RUN_DIR/origin.conf"

{
  nginx_common "$RUN_DIR/proxy"
  cat <<EOF
  log_format bench_json escape=json '{"time":"\$time_iso8601","request_id":"\$request_id","method":"\$request_method","path":"\$uri","status":\$status,"bytes":\$body_bytes_sent,"duration_ms":\$request_time,"upstream":"\$upstream_addr","client":"\$remote_addr:\$remote_port"}';
  upstream origin {
    server $HOST:$ORIGIN_PORT;
    keepalive 64;
  }
  # The 48 KB body fits the proxy buffers, so nginx never spills it to a temp file.
  proxy_buffer_size 8k;
  proxy_buffers 16 8k;
  server {
    listen $HOST:$NGINX_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen $HOST:$NGINX_LOG_PORT;
    access_log $RUN_DIR/nginx_access.log bench_json;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$RUN_DIR/proxy.conf"

imgforge_conf() { # NAME PORT ADMIN ACCESS_LOG(true|false) LEVEL
  cat <<EOF
[server]
listen = ["$HOST:$2"]
admin_listen = "$HOST:$3"
threads = $THREADS
upgrade_sock = "$RUN_DIR/$1.upgrade.sock"
pid_file = "$RUN_DIR/$1.pid"

[log]
format = "json"
level = "$5"
access_log = $4

[[site]]
name = "bench"
hosts = ["$VHOST"]
default = true

[site.origin]
servers = ["$HOST:$ORIGIN_PORT"]
EOF
}
imgforge_conf imgforge "$IMGF_PORT" "$IMGF_ADMIN" false warn >"$RUN_DIR/imgforge.toml"
# The access line is an `info` event with target `access`: let it through, keep the rest at warn.
imgforge_conf imgforge_log "$IMGF_LOG_PORT" "$IMGF_LOG_ADMIN" true "warn,access=info" >"$RUN_DIR/imgforge_log.toml"
imgforge_conf base "$BASE_PORT" "$BASE_ADMIN" false warn >"$RUN_DIR/base.toml"
imgforge_conf base_log "$BASE_LOG_PORT" "$BASE_LOG_ADMIN" true "warn,access=info" >"$RUN_DIR/base_log.toml"

# ------------------------------------------------------------------ start
IDLE_BEFORE=$(idle_pct 3)
log "machine idle before start: ${IDLE_BEFORE}% (3 s sample)"

"$NGINX" -t -q -p "$RUN_DIR/origin" -c "$RUN_DIR/origin.conf" -g 'daemon off;' || die "origin nginx config"
"$NGINX" -t -q -p "$RUN_DIR/proxy" -c "$RUN_DIR/proxy.conf" -g 'daemon off;' || die "proxy nginx config"
start_bg origin "$RUN_DIR/origin.out" "$NGINX" -p "$RUN_DIR/origin" -c "$RUN_DIR/origin.conf" -g 'daemon off;'
start_bg nginx "$RUN_DIR/proxy.out" "$NGINX" -p "$RUN_DIR/proxy" -c "$RUN_DIR/proxy.conf" -g 'daemon off;'
# imgforge logs (and, for imgforge_log, access lines) go to stdout: a file opened for append,
# so it can be truncated between runs.
start_bg imgforge "$RUN_DIR/imgforge.out" "$BIN" -c "$RUN_DIR/imgforge.toml"
if [[ " $VARIANTS " == *" floor "* ]]; then
  [ -x "$FLOOR" ] || die "floor binary $FLOOR missing (BUILD=1 builds it)"
  free_port FLOOR_PORT
  start_bg floor "$RUN_DIR/floor.out" "$FLOOR" proxy "$HOST:$FLOOR_PORT" "$HOST:$ORIGIN_PORT"
fi
start_bg imgforge_log "$RUN_DIR/imgforge_access.log" "$BIN" -c "$RUN_DIR/imgforge_log.toml"
if [ -n "$BASE_BIN" ]; then
  start_bg base "$RUN_DIR/base.out" "$BASE_BIN" -c "$RUN_DIR/base.toml"
  start_bg base_log "$RUN_DIR/base_access.log" "$BASE_BIN" -c "$RUN_DIR/base_log.toml"
fi

wait_http "http://$HOST:$ORIGIN_PORT/$OBJECT_NAME" 20
wait_http "http://$HOST:$IMGF_ADMIN/readyz" 30
wait_http "http://$HOST:$IMGF_LOG_ADMIN/readyz" 30
if [ -n "$BASE_BIN" ]; then
  wait_http "http://$HOST:$BASE_ADMIN/readyz" 30
  wait_http "http://$HOST:$BASE_LOG_ADMIN/readyz" 30
fi

url_of() {
  case $1 in
    nginx) echo "http://$HOST:$NGINX_PORT/$OBJECT_NAME" ;;
    nginx_log) echo "http://$HOST:$NGINX_LOG_PORT/$OBJECT_NAME" ;;
    imgforge) echo "http://$HOST:$IMGF_PORT/$OBJECT_NAME" ;;
    floor) echo "http://$HOST:$FLOOR_PORT/$OBJECT_NAME" ;;
    imgforge_log) echo "http://$HOST:$IMGF_LOG_PORT/$OBJECT_NAME" ;;
    base) echo "http://$HOST:$BASE_PORT/$OBJECT_NAME" ;;
    base_log) echo "http://$HOST:$BASE_LOG_PORT/$OBJECT_NAME" ;;
    *) die "unknown variant $1" ;;
  esac
}
proc_of() { case $1 in nginx | nginx_log) echo nginx ;; *) echo "$1" ;; esac; }
logfile_of() {
  case $1 in
    nginx_log) echo "$RUN_DIR/nginx_access.log" ;;
    imgforge_log) echo "$RUN_DIR/imgforge_access.log" ;;
    base_log) echo "$RUN_DIR/base_access.log" ;;
    *) echo "" ;;
  esac
}

# Verify every variant returns the object byte for byte before loading it.
for v in $VARIANTS; do
  url=$(url_of "$v")
  wait_http "$url" 20
  code=$(curl -s -H "Host: $VHOST" -o "$RUN_DIR/check.bin" -w '%{http_code}' --max-time 5 "$url")
  [ "$code" = 200 ] || die "$v: $url answered $code"
  cmp -s "$RUN_DIR/check.bin" "$OBJECT" || die "$v: body differs from $OBJECT"
  log "$v ok: $url -> 200, $OBJECT_BYTES bytes, identical"
done

# ------------------------------------------------------------------ load
# to_ms VALUE-WITH-UNIT (wrk: 123.45us, 1.23ms, 1.05s, 2.00m) -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN{
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.3f", n }'
}
# cpu time "0m1.234s" -> ms
clock_ms() { awk -v t="$1" 'BEGIN{ split(t, a, "m"); sub("s", "", a[2]); printf "%d", (a[1] * 60 + a[2]) * 1000 }'; }

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
mkdir -p "$OUT_DIR"
RUNS_TSV=$OUT_DIR/passthrough_runs.tsv
printf 'variant\tconc\trun\trequests\tok\tduration_s\treq_s\tp50_ms\tp90_ms\tp99_ms\tmax_ms\terrors\tnon2xx\tproxy_cpu_ms\torigin_cpu_ms\twrk_cpu_ms\tbg_cpu_pct\tlog_bytes\n' >"$RUNS_TSV"

one_run() { # VARIANT CONC RUN
  local v=$1 c=$2 i=$3 url t logf out pid opid p0 p1 o0 o1 m0 m1 wrk_cpu wu ws
  url=$(url_of "$v")
  t=$((c < 2 ? c : 2))
  pid=${PID_OF[$(proc_of "$v")]}
  opid=${PID_OF[origin]}
  logf=$(logfile_of "$v")
  wait_quiet
  timeout -k 5 $((WARMUP + 30)) wrk -t"$t" -c"$c" -d"${WARMUP}s" --timeout "$WRK_TIMEOUT" \
    -H "Host: $VHOST" "$url" >/dev/null 2>&1 || true
  [ -z "$logf" ] || : >"$logf"
  p0=$(tree_cpu_ticks "$pid"); o0=$(tree_cpu_ticks "$opid"); m0=$(machine_ticks)
  # subshell, so that `times` reports wrk's own CPU (its waited-for children)
  out=$( (timeout -k 5 $((DURATION + 60)) wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout "$WRK_TIMEOUT" \
    --latency -H "Host: $VHOST" "$url" 2>&1 || echo "wrk failed: exit $?"; times))
  p1=$(tree_cpu_ticks "$pid"); o1=$(tree_cpu_ticks "$opid"); m1=$(machine_ticks)
  local log_bytes=0
  [ -z "$logf" ] || log_bytes=$(stat -c %s "$logf")
  read -r wu ws < <(tail -1 <<<"$out")
  wrk_cpu=$(($(clock_ms "$wu") + $(clock_ms "$ws")))

  local requests dur non2xx sockerr p50 p90 p99 pmax
  requests=$(awk '/requests in/ {print $1; exit}' <<<"$out")
  dur=$(awk '/requests in/ {d=$4; sub(/,$/, "", d); print d; exit}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF; exit}' <<<"$out")
  sockerr=$(awk '/Socket errors:/ {s=0; for (k=3; k<=NF; k++) { x=$k; sub(/,/, "", x); if (x ~ /^[0-9]+$/) s+=x } print s; exit}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2; exit}' <<<"$out")
  p90=$(awk '$1 == "90%" {print $2; exit}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2; exit}' <<<"$out")
  pmax=$(awk '$1 == "Latency" && NF >= 4 {print $4; exit}' <<<"$out")
  if [ -z "$requests" ] || [ -z "$p99" ]; then
    log "$v c=$c run$i: could not parse wrk output:"; printf '%s\n' "$out" >&2
    requests=0; dur=${DURATION}s; p50=0ms; p90=0ms; p99=0ms; pmax=0ms
  fi
  non2xx=${non2xx:-0}; sockerr=${sockerr:-0}
  local dur_s ok rps proxy_ms origin_ms bg
  dur_s=$(awk -v d="$dur" 'BEGIN{n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; printf "%.3f", n}')
  ok=$((requests - non2xx))
  rps=$(awk -v n="$ok" -v d="$dur_s" 'BEGIN{printf "%.1f", (d > 0 ? n / d : 0)}')
  proxy_ms=$(((p1 - p0) * 1000 / HZ))
  origin_ms=$(((o1 - o0) * 1000 / HZ))
  # CPU used by anything other than this proxy, the origin and wrk, as % of the whole machine
  bg=$(awk -v b0="${m0% *}" -v b1="${m1% *}" -v hz="$HZ" -v p="$proxy_ms" -v o="$origin_ms" -v w="$wrk_cpu" -v d="$dur_s" -v n="$NCPU" \
    'BEGIN{s=(b1-b0)*1000/hz; x=(s-p-o-w)/(d*1000*n)*100; if (x < 0) x = 0; printf "%.0f", x}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$v" "$c" "$i" "$requests" "$ok" "$dur_s" "$rps" "$(to_ms "$p50")" "$(to_ms "$p90")" "$(to_ms "$p99")" "$(to_ms "$pmax")" \
    "$((sockerr + non2xx))" "$non2xx" "$proxy_ms" "$origin_ms" "$wrk_cpu" "$bg" "$log_bytes" >>"$RUNS_TSV"
  LAST_BG=$bg
  log "$v c=$c run$i: $rps req/s p50=$(to_ms "$p50")ms p99=$(to_ms "$p99")ms errors=$((sockerr + non2xx)) proxy_cpu=${proxy_ms}ms origin_cpu=${origin_ms}ms wrk_cpu=${wrk_cpu}ms bg=${bg}%"
}

# run_cell VARIANT CONC RUN : one_run, repeated while foreign load spoiled it
LAST_BG=0
DISCARDED=0
DISCARDED_TSV=$OUT_DIR/passthrough_runs_discarded.tsv
head -1 "$RUNS_TSV" >"$DISCARDED_TSV"
run_cell() {
  local attempt
  for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
    one_run "$@"
    ((LAST_BG <= BG_RETRY_PCT)) && return 0
    if ((attempt == MAX_ATTEMPTS)); then
      log "run kept despite bg=${LAST_BG}% (attempts exhausted)"
      return 0
    fi
    log "bg CPU ${LAST_BG}% > ${BG_RETRY_PCT}%: discarding the run and repeating it"
    tail -1 "$RUNS_TSV" >>"$DISCARDED_TSV"
    sed -i '$d' "$RUNS_TSV"
    DISCARDED=$((DISCARDED + 1))
  done
}

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
for c in $CONCURRENCY; do
  for i in $(seq 1 "$RUNS"); do
    for v in $VARIANTS; do run_cell "$v" "$c" "$i"; done
  done
done
IDLE_AFTER=$(idle_pct 3)
log "machine idle after the runs (load stopped, servers idle): ${IDLE_AFTER}% (3 s sample)"

# ------------------------------------------------------------------ report
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { # VARIANT CONC COLUMN-NAME -> values
  awk -F'\t' -v v="$1" -v c="$2" -v name="$3" 'NR == 1 {for (k = 1; k <= NF; k++) if ($k == name) n = k; next} $1 == v && $2 == c {print $n}' "$RUNS_TSV"
}
ref_of() {
  if [[ " $VARIANTS " == *" base "* || " $VARIANTS " == *" base_log "* ]]; then
    case $1 in imgforge) echo base ;; imgforge_log) echo base_log ;; *) echo "" ;; esac
    return
  fi
  case $1 in nginx_log) echo nginx ;; floor) echo nginx ;; imgforge) [[ " $VARIANTS " == *" floor "* ]] && echo floor || echo nginx ;; imgforge_log) echo nginx_log ;; *) echo "" ;; esac
}
label_of() {
  case $1 in
    nginx) echo "nginx proxy_pass" ;;
    imgforge) echo "**imgforge**" ;;
    floor) echo "floor (Pingora alone)" ;;
    nginx_log) echo "nginx proxy_pass, access log on" ;;
    imgforge_log) echo "imgforge, access log on" ;;
    base) echo "imgforge $BASE_REV" ;;
    base_log) echo "imgforge $BASE_REV, access log on" ;;
  esac
}

if [ -n "${IMGFORGE_REV:-}" ]; then
  GIT_REV=$IMGFORGE_REV
else
  GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null ||
    [ -n "$(git -C "$ROOT" ls-files --others --exclude-standard -- src 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV + uncommitted src changes"
  fi
fi
NGINX_VER=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VER=$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $2}')
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
CMD="${CMD_ENV}benches/passthrough.sh"

REPORT=$OUT_DIR/passthrough.md
{
  echo "### Passthrough: imgforge vs nginx proxy_pass ($START_DATE)"
  echo
  echo "\`$CMD\` — imgforge $GIT_REV, $NGINX_VER, wrk $WRK_VER; $NCPU cores ($CPU_MODEL), kernel $(uname -r); loopback only."
  echo "Object: \`$OBJECT\` ($OBJECT_BYTES bytes) from an nginx static origin; both proxies fetch it from the origin on every request (no cache)."
  echo "Each cell: median of $RUNS run(s) of ${DURATION} s (after a ${WARMUP} s warm-up), \`wrk -t min(2,c) -c c --latency\`, keep-alive, variants alternated run by run."
  echo
  echo "| c | proxy | req/s (median) | req/s min–max | p50 ms | p99 ms | proxy CPU µs/req | errors | bg CPU % | ratio (req/s) |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for c in $CONCURRENCY; do
    for v in $VARIANTS; do
      rps=$(col "$v" "$c" req_s | median)
      lo=$(col "$v" "$c" req_s | sort -g | head -1)
      hi=$(col "$v" "$c" req_s | sort -g | tail -1)
      p50=$(col "$v" "$c" p50_ms | median)
      p99=$(col "$v" "$c" p99_ms | median)
      cpu=$(paste <(col "$v" "$c" proxy_cpu_ms) <(col "$v" "$c" ok) | awk '{print ($2 > 0 ? $1 * 1000 / $2 : 0)}' | median)
      errs=$(col "$v" "$c" errors | awk '{s += $1} END {print s + 0}')
      bg=$(col "$v" "$c" bg_cpu_pct | median)
      ratio="—"
      ref=$(ref_of "$v")
      if [ -n "$ref" ] && [[ " $VARIANTS " == *" $ref "* ]]; then
        rref=$(col "$ref" "$c" req_s | median)
        ratio=$(awk -v a="$rps" -v b="$rref" 'BEGIN{printf "%.2f×", (b > 0 ? a / b : 0)}')
        ratio="$ratio vs $ref"
      fi
      printf '| %s | %s | %.0f | %.0f–%.0f | %.2f | %.2f | %.0f | %s | %s | %s |\n' \
        "$c" "$(label_of "$v")" "$rps" "$lo" "$hi" "$p50" "$p99" "$cpu" "$errs" "$bg" "$ratio"
    done
  done
  echo
  echo "Machine idle: ${IDLE_BEFORE}% before the servers started, ${IDLE_AFTER}% after the last run (3 s samples)."
  echo "\`bg CPU %\` = share of the whole machine used by anything other than the proxy, the origin and wrk during a run (other sessions share the cores);"
  echo "each run first waited for ${QUIET_SECS} s at ≤ ${QUIET_BUSY_PCT}% machine busy (max ${QUIET_MAX_WAIT} s); runs with bg CPU > ${BG_RETRY_PCT}% were discarded and repeated (${DISCARDED} discarded, up to ${MAX_ATTEMPTS} attempts per run)."
  echo "\`proxy CPU µs/req\` = proxy process-tree CPU time (user+sys, all workers/threads) / ok responses."
  echo "Raw runs: \`${RUNS_TSV#"$ROOT"/}\` (discarded: \`${DISCARDED_TSV#"$ROOT"/}\`)."
} | tee "$REPORT"
log "report written to $REPORT"
