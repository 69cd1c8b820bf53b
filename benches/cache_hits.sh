#!/usr/bin/env bash
# benches/cache_hits.sh: hit throughput of a cached transformed variant through imgforge (memory
# tier, then disk tier) versus nginx proxy_cache serving the same bytes and the framework's floor
# (benches/floor: Pingora alone answering those bytes from memory), same machine, same run.
# Loopback only; every process started here is stopped by PID on exit.
#
#   cargo build --release -p imgforge -p imgforge-floor
#   BIN=target/release/imgforge DURATION=10 RUNS=2 CONCURRENCY="2 8" benches/cache_hits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/imgforge}
FLOOR=${FLOOR:-target/release/imgforge-floor}
DURATION=${DURATION:-10}
RUNS=${RUNS:-2}
CONCURRENCY=${CONCURRENCY:-"2 8"}
CORPUS=${CORPUS:-../shared/corpus}
HOST=127.0.0.1
[ -x "$BIN" ] && [ -x "$FLOOR" ] || {
  echo "build first: cargo build --release -p imgforge -p imgforge-floor (or set BIN, FLOOR)" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -qq wrk nginx-light >/dev/null
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
RUN=$(mktemp -d /tmp/imgforge-cachebench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not answering: $1" >&2; return 1; }

VARIANT="/img/unsafe/rs:fit:400:0/q:80/plain/medium.jpg@jpg"
imgforge_start() { # NAME PORT ADMIN CACHE_TOML
  cat >"$RUN/$1.toml" <<TOML
[server]
listen = ["$HOST:$2"]
admin_listen = "$HOST:$3"
threads = 2
upgrade_sock = "$RUN/$1.upgrade.sock"
pid_file = "$RUN/$1.pid"
[log]
level = "warn"
access_log = false
$4
[[site]]
name = "bench"
hosts = ["$HOST"]
default = true
[site.origin]
root = "$(realpath "$CORPUS")"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
TOML
  "$BIN" -c "$RUN/$1.toml" >"$RUN/$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://$HOST:$3/health"
  wait_http "http://$HOST:$2$VARIANT"
}

MEM_PORT=$(port); MEM_ADMIN=$(port); DISK_PORT=$(port); DISK_ADMIN=$(port)
imgforge_start mem "$MEM_PORT" "$MEM_ADMIN" $'[cache]\nmemory_size = "256MiB"'
imgforge_start disk "$DISK_PORT" "$DISK_ADMIN" "$(printf '[cache]\nmemory_size = "0"\ndisk_path = "%s/disk"\ndisk_size = "1GiB"' "$RUN")"
sleep 1 # let the disk tier's write behind the first response finish

mkdir -p "$RUN/www" "$RUN/ngx"
curl -fs -o "$RUN/www/variant.jpg" "http://$HOST:$MEM_PORT$VARIANT"
ORIGIN_PORT=$(port); NGINX_PORT=$(port)
# Workers must be able to read the files and write the cache under our private temp dir.
chmod 0755 "$RUN"
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
cat >"$RUN/ngx/nginx.conf" <<NGX
$USER_LINE
worker_processes auto;
pid $RUN/ngx/nginx.pid;
error_log $RUN/ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type image/jpeg;
  client_body_temp_path $RUN/ngx/cb; proxy_temp_path $RUN/ngx/pt;
  fastcgi_temp_path $RUN/ngx/ft; uwsgi_temp_path $RUN/ngx/ut; scgi_temp_path $RUN/ngx/st;
  keepalive_requests 1000000;
  proxy_cache_path $RUN/ngx/cache keys_zone=img:10m max_size=1g;
  server { listen $HOST:$ORIGIN_PORT; root $RUN/www; }
  server {
    listen $HOST:$NGINX_PORT;
    location / {
      proxy_pass http://$HOST:$ORIGIN_PORT;
      proxy_cache img;
      proxy_cache_valid 200 1h;
      add_header X-Cache-Status \$upstream_cache_status;
    }
  }
}
NGX
"$NGINX" -c "$RUN/ngx/nginx.conf" -p "$RUN/ngx" -g 'daemon off;' &
PIDS+=($!)
FLOOR_PORT=$(port)
"$FLOOR" memory "$HOST:$FLOOR_PORT" "$RUN/www/variant.jpg" >"$RUN/floor.log" 2>&1 &
PIDS+=($!)
wait_http "http://$HOST:$FLOOR_PORT/variant.jpg"
wait_http "http://$HOST:$NGINX_PORT/variant.jpg"
curl -fs -o /dev/null "http://$HOST:$NGINX_PORT/variant.jpg"

hit() { curl -fsI "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}'; }
for u in "http://$HOST:$MEM_PORT$VARIANT" "http://$HOST:$DISK_PORT$VARIANT" "http://$HOST:$NGINX_PORT/variant.jpg"; do
  [ "$(hit "$u")" = "HIT" ] || { echo "not a cache hit: $u" >&2; exit 1; }
done

measure() { # URL CONC -> "req/s p99_ms"
  timeout $((DURATION + 30)) wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"${DURATION}s" --latency "$1" |
    awk '/Requests\/sec/ {r=$2} /^ +99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) sub("ms","",v); else if (v ~ /s$/) {sub("s","",v); v*=1000}; p=v} END {printf "%s %s\n", r, p}'
}
declare -A RPS P99
for c in $CONCURRENCY; do
  for _ in $(seq "$RUNS"); do
    for v in nginx floor mem disk; do
      case $v in
        nginx) u="http://$HOST:$NGINX_PORT/variant.jpg" ;;
        floor) u="http://$HOST:$FLOOR_PORT/variant.jpg" ;;
        mem) u="http://$HOST:$MEM_PORT$VARIANT" ;;
        disk) u="http://$HOST:$DISK_PORT$VARIANT" ;;
      esac
      timeout 20 wrk -t1 -c1 -d2s "$u" >/dev/null || true
      read -r r p < <(measure "$u" "$c")
      RPS[$v,$c]+="$r "; P99[$v,$c]+="$p "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "### Cache hits: imgforge vs nginx proxy_cache ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "\`DURATION=$DURATION RUNS=$RUNS CONCURRENCY=\"$CONCURRENCY\" $0\` — variant \`$VARIANT\` ($(stat -c %s "$RUN/www/variant.jpg") bytes), keep-alive, median of $RUNS runs, variants alternated."
echo
echo "| c | server | req/s | p99 ms | ratio to nginx | ratio to floor |"
echo "|---:|---|---:|---:|---:|---:|"
for c in $CONCURRENCY; do
  n=$(echo "${RPS[nginx,$c]}" | median)
  f=$(echo "${RPS[floor,$c]}" | median)
  for v in nginx floor mem disk; do
    r=$(echo "${RPS[$v,$c]}" | median); p=$(echo "${P99[$v,$c]}" | median)
    case $v in
      nginx) label="nginx proxy_cache" ;;
      floor) label="floor (Pingora alone, from memory)" ;;
      *) label="imgforge, $v tier" ;;
    esac
    echo "| $c | $label | $r | $p | $(awk -v a="$r" -v b="$n" 'BEGIN{printf "%.2f×", a/b}') | $(awk -v a="$r" -v b="$f" 'BEGIN{printf "%.2f×", a/b}') |"
  done
  m=$(echo "${RPS[mem,$c]}" | median); d=$(echo "${RPS[disk,$c]}" | median)
  echo "| $c | disk tier / memory tier | | | | $(awk -v a="$d" -v b="$m" 'BEGIN{printf "%.2f×", a/b}') |"
done
