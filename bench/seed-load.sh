#!/usr/bin/env bash
# The original service's own load test, run against this server on the real CalSim3 data.
#
#   bench/seed-load.sh [memory|postgis]...   (default: both)
#
# Builds the release binary, serves the data (PostGIS: DATABASE_URL, or a throwaway cluster
# from scripts/pg.sh, migrated and imported; memory: --data), and runs ApacheBench (Debian's
# apache2-utils, installed when missing and root) with the original's commands plus the two
# routes it really served under load. Prints a Markdown table for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

sources=("$@")
[[ ${#sources[@]} -gt 0 ]] || sources=(memory postgis)
DATA="${CALSIM3_DATA:-$(cd .. && pwd)/shared/data/calsim3}"
command -v ab >/dev/null || {
  [[ $(id -u) -eq 0 ]] || { echo "install apache2-utils (ab)" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null
}
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release -q
BIN=target/release/coeqwal-network-api
OUT="$(mktemp -d)"
SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$OUT"; stop_throwaway_pg; }
trap cleanup EXIT

wait_ready() {
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/ready" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not become ready" >&2
  exit 1
}

# name | requests | concurrency | path
RUNS=(
  "nodes/optimized|1000|100|/api/nodes/optimized?limit=500"
  "network/analysis/node/1|500|50|/api/network/analysis/node/1"
  "nodes|1000|100|/api/nodes?limit=500"
  "nodes/spatial|500|50|/api/nodes/spatial?bbox=-122.5,37.5,-121,39&limit=1000"
)

echo "| source | route | requests | concurrency | requests/s | p50 ms | p95 ms | p99 ms | max ms | failed |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for source in "${sources[@]}"; do
  port="$(free_port)"
  if [[ "$source" == postgis ]]; then
    [[ -n "${DATABASE_URL:-}" ]] || start_throwaway_pg
    "$BIN" migrate >/dev/null
    "$BIN" import --quiet "$DATA" >/dev/null
    RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" >"$OUT/server.log" 2>&1 &
  else
    RUST_LOG=warn DATABASE_URL= "$BIN" serve --data "$DATA" --listen "127.0.0.1:$port" >"$OUT/server.log" 2>&1 &
  fi
  SERVER_PID=$!
  wait_ready "$port"
  for run in "${RUNS[@]}"; do
    IFS='|' read -r name n c path <<<"$run"
    ab -q -n "$n" -c "$c" -e "$OUT/pct.csv" "http://127.0.0.1:$port$path" >"$OUT/ab.txt" 2>&1
    rps=$(awk '/Requests per second/ {print $4}' "$OUT/ab.txt")
    failed=$(awk '/Failed requests/ {print $3}' "$OUT/ab.txt")
    non2xx=$(awk '/Non-2xx responses/ {print $3}' "$OUT/ab.txt")
    pct() { awk -F, -v p="$1" '$1==p {print $2}' "$OUT/pct.csv"; }
    echo "| $source | \`$path\` | $n | $c | $rps | $(pct 50) | $(pct 95) | $(pct 99) | $(pct 100) | $failed${non2xx:+ (non-2xx $non2xx)} |"
  done
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
done
