#!/usr/bin/env bash
# What TLS costs the master's HTTP API: wrk against a master's /health, plain HTTP and HTTPS
# (the certificate `agora credentials --tls_names` makes), with keep-alive connections and
# with a new connection (a TCP and, for HTTPS, a TLS handshake) for every request.
#   bench/http_tls.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build=${1:-build}
seconds=${2:-10}
agora="$build/bin/agora"
work=$(mktemp -d)
cleanup() {  # the masters start() recorded (it runs in a subshell: their pids are in files)
  for file in "$work"/*.pid; do
    [ -f "$file" ] && kill "$(cat "$file")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
"$agora" credentials "$work/keys" --principals=operator --tls_names=127.0.0.1 >/dev/null
start() {  # start NAME FLAGS...: a master (registry in memory); prints its HTTP port
  local name=$1
  shift
  "$agora" master --ip=127.0.0.1 --port=0 --protocol_port=0 --http_rate_limit=0 \
    --registry=in_memory --info_file="$work/$name.json" "$@" \
    >"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
  for _ in $(seq 100); do
    [ -s "$work/$name.json" ] && break
    sleep 0.1
  done
  grep -o '"http": *"[^"]*"' "$work/$name.json" | grep -o '[0-9]*"$' | tr -d '"'
}
plain=$(start plain)
tls=$(start tls --tls_cert="$work/keys/http.crt" --tls_key="$work/keys/http.key")
printf '%-8s %-12s %12s %14s\n' SCHEME CONNECTIONS REQUESTS/S "LATENCY P50"
for mode in keep-alive new; do
  for scheme in http https; do
    port=$plain
    [ "$scheme" = https ] && port=$tls
    header=()
    [ "$mode" = new ] && header=(-H "Connection: close")
    out=$(wrk -t1 -c8 -d"${seconds}s" --latency "${header[@]}" "$scheme://127.0.0.1:$port/health")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    printf '%-8s %-12s %12s %14s\n' "$scheme" "$mode" "$rps" "$p50"
  done
done
